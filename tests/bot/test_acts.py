"""The act classifier shipped in finetune/shipped/acts/: it loads, reads the suite's phrasings as recorded, and
routes only greetings and thanks that ask nothing else to the server's word back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.routing import route
from bot.turn.acts import CONFIG, HEAD, SHIPPED_ACTS, ActGuess, ActModel
from finetune.acts import ACTS, TEMPLATES
from finetune.train_acts import suite_examples
from retrieval.embed import Encoder


@pytest.fixture(scope="module")
def model() -> ActModel:
    return ActModel.load()


def test_the_shipped_model_reads_the_suite_phrasings_as_its_record_says(model: ActModel, encoder: Encoder) -> None:
    recorded = json.loads((SHIPPED_ACTS / CONFIG).read_text())["figures"]
    examples = suite_examples()
    pred = model.predict([e.text for e in examples], encoder.encode_query([e.text for e in examples]))
    accuracy = float(np.mean([p.label == e.label for p, e in zip(pred, examples, strict=True)]))
    assert model.labels == list(ACTS)
    assert accuracy == pytest.approx(recorded[f"suite_{recorded['recipe']}"]["accuracy"], abs=0.01)
    assert accuracy >= 0.85


@pytest.mark.parametrize(("text", "act"), [
    ("hello!", "greeting"), ("good morning, is anyone there?", "greeting"), ("thanks a lot, bye", "thanks"),
    ("ok perfect ty", "thanks"), ("where is my parcel?", "order"), ("i need a warm winter jacket", "find"),
])
def test_plain_messages_get_their_act(model: ActModel, encoder: Encoder, text: str, act: str) -> None:
    assert model.predict([text], encoder.encode_query([text]))[0].label == act


def test_a_damaged_model_or_the_wrong_vectors_are_refused_with_the_reason(model: ActModel, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vector per text"):
        model.predict(["hi", "hello"], np.zeros((2, 10)))
    broken = tmp_path / "acts"
    shutil.copytree(SHIPPED_ACTS, broken)
    np.savez_compressed(broken / HEAD, coef=np.zeros((3, 384)), intercept=np.zeros(3))
    with pytest.raises(ValueError, match="rows for"):
        ActModel.load(broken)
    with pytest.raises(FileNotFoundError):
        ActModel.load(tmp_path / "nothing")


@pytest.mark.parametrize(("text", "guess", "kind"), [
    ("heyy", ActGuess("greeting", 0.95), "greeting"),
    ("cool ty", ActGuess("thanks", 0.9), "thanks"),
    ("heyy", ActGuess("greeting", 0.4), "product"),  # not sure enough: the search answers
    ("hi, boots under $120?", ActGuess("greeting", 0.9), "product"),  # it asks for something
    ("hi, do you sell tents", ActGuess("greeting", 0.9), "product"),
    ("thanks, can I talk to a human", ActGuess("thanks", 0.9), "human"),
])
def test_only_small_talk_that_asks_nothing_else_is_the_servers(text: str, guess: ActGuess, kind: str) -> None:
    assert route(text, None, act=guess).kind == kind


def test_every_act_has_templates_and_every_template_fills() -> None:
    from finetune.acts import template_examples

    assert set(TEMPLATES) <= set(ACTS)
    examples = template_examples(40, seed=3)
    assert {e.label for e in examples} == set(TEMPLATES)
    assert not any("{" in e.text for e in examples)
