"""The intent, sentiment and churn models shipped in the repository: fresh, small, and the ones behind the figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.model_store import sha256_of
from bot.signals import ChurnModel, IntentClassifier, SentimentClassifier, latest_model
from finetune import shipped_signals
from finetune.sentiment_data import LABELS, sentiment_splits
from finetune.shipped import SHIPPED
from finetune.shipped_signals import REBUILD, SIGNALS, WEIGHTS, StaleSignals
from finetune.text_tasks import macro_f1
from tests.conftest import DATA, data

TASKS = ("intent", "sentiment", "churn")


@pytest.fixture(autouse=True, scope="module")
def _datasets() -> None:
    data(*sorted({f for task in TASKS for f in shipped_signals.folders(task)}))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("classifiers")
    return {task: shipped_signals.install(task, out, DATA, say=lambda _: None) for task in TASKS}


@pytest.mark.parametrize("task", TASKS)
def test_each_shipped_model_was_trained_from_this_checkouts_data_and_code(task: str) -> None:
    manifest = shipped_signals.check(task, DATA)  # raises, naming `make shipped-signals`
    assert manifest["rebuild"] == REBUILD and manifest["task"] == task
    assert sha256_of(SIGNALS / task / WEIGHTS) == manifest["weights_sha256"]


def test_every_shipped_model_file_together_stays_under_30_mb() -> None:
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total < 30 * 2**20, f"{total / 2**20:.1f} MB shipped"


def test_changed_data_or_data_code_makes_the_check_fail_with_the_rebuild_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    (data / "chat_sentiment").mkdir(parents=True)
    (data / "clothing_reviews").symlink_to(DATA / "clothing_reviews")
    tweets = (DATA / "chat_sentiment" / "tweets.tsv").read_text(encoding="utf-8")
    (data / "chat_sentiment" / "tweets.tsv").write_text(tweets + "99999\t-2.0\ta new rated message\n", encoding="utf-8")
    with pytest.raises(StaleSignals, match=r"a change to the data \(chat_sentiment/tweets.tsv\);") as caught:
        shipped_signals.check("sentiment", data)
    assert f"`{REBUILD}`" in str(caught.value) and "code" not in str(caught.value)
    monkeypatch.setitem(shipped_signals.DATA_CODE, "intent", ("finetune.intents", "finetune.chat_sentiment"))
    with pytest.raises(StaleSignals, match=r"a change to the code that makes its examples \(finetune.intents, "
                                           r"finetune.chat_sentiment\);") as caught:
        shipped_signals.check("intent", DATA)
    assert "data (" not in str(caught.value)


def test_without_the_datasets_the_install_checks_what_it_can_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    manifest = shipped_signals.check("churn", tmp_path / "no-data", say=said.append)
    assert manifest["task"] == "churn"
    assert said == [f"[signals] churn: its training data is not in {tmp_path / 'no-data'}; checked its code, "
                    f"encoder and recipe only"]
    monkeypatch.setitem(shipped_signals.DATA_CODE, "churn", ("finetune.churn", "finetune.intents"))
    with pytest.raises(StaleSignals, match="a change to the code that makes its examples") as caught:
        shipped_signals.check("churn", tmp_path / "no-data")
    assert "data (" not in str(caught.value)


def test_the_shipped_sentiment_model_meets_the_chat_and_review_targets() -> None:
    by_source = json.loads((SIGNALS / "sentiment" / "metrics.json").read_text())["by_source"]
    chat, reviews = by_source["chat"], by_source["reviews"]
    assert chat["examples"] == 672 and reviews["examples"] == 3620
    assert chat["macro_f1"] >= chat["baseline_macro_f1"] + 0.05, chat
    assert chat["negative_recall"] >= 0.75, chat
    assert reviews["macro_f1"] >= reviews["baseline_macro_f1"] + 0.03, reviews


def test_the_installed_model_reproduces_its_reported_chat_figure(installed: dict[str, Path]) -> None:
    reported = json.loads((installed["sentiment"] / "metrics.json").read_text())["by_source"]["chat"]
    splits = sentiment_splits(DATA)
    idx = splits.source("chat")
    y = np.array([LABELS.index(splits.test[i].label) for i in idx])
    probs = SentimentClassifier(installed["sentiment"], int8=False).probs([splits.test[i].text for i in idx])
    assert macro_f1(probs.argmax(axis=1), y, 3) == pytest.approx(reported["macro_f1"], abs=0.01)


def test_the_served_model_reads_sarcasm_and_complaints_phrased_as_questions(installed: dict[str, Path]) -> None:
    served = SentimentClassifier(installed["sentiment"])  # int8, as `make run` loads it
    upset = ["great, another delay. just great.", "you guys are useless, nobody answers my emails",
             "why do I have to explain this for the fourth time?"]
    for text, s in zip(upset, served.predict(upset), strict=True):
        assert s.label == "negative" and s.negative >= 0.5, (text, s)
    calm = served.predict(["where is my order A10023?"])[0]
    assert calm.label != "positive" and calm.negative < 0.5, calm
    assert IntentClassifier(installed["intent"]).predict(["where is my order A10023?"])[0].label == "track_order"
    churn = ChurnModel(installed["churn"])
    assert 0.0 < churn.predict(["no purchases yet"], [[0.0] * len(churn.config.feature_names)])[0] < 1.0


def test_install_is_idempotent_and_a_later_local_model_wins(installed: dict[str, Path], tmp_path: Path) -> None:
    said: list[str] = []
    again = shipped_signals.install("intent", installed["intent"].parent, DATA, say=said.append)
    assert again == installed["intent"] and "already installed" in said[0]
    newer = installed["intent"].parent / "intent-99991231-000000"
    assert latest_model(installed["intent"].parent, "intent") == installed["intent"]
    newer.mkdir()
    try:
        assert latest_model(installed["intent"].parent, "intent") == newer
    finally:
        newer.rmdir()


def test_a_tampered_shipped_model_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "signals"
    shutil.copytree(SIGNALS / "intent", root / "intent")
    weights = root / "intent" / WEIGHTS
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(StaleSignals, match="not the file its manifest names"):
        shipped_signals.install("intent", tmp_path / "out", DATA, say=lambda _: None, root=root)
    assert not (tmp_path / "out").exists()
