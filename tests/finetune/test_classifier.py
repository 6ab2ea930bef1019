from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.signals import IntentClassifier, SignalsError, latest_model
from finetune.classifier import ClassifierArgs, main
from tests.conftest import SHARED


@pytest.fixture(scope="module")
def smoke_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("classifiers")
    return main(ClassifierArgs(task="intent", out_dir=out, data_dir=SHARED / "data", epochs=1, max_steps=40,
                               sample=640, batch_size=16), say=lambda _: None)


def test_a_short_run_writes_the_report_and_the_loss_goes_down(smoke_model: Path) -> None:
    metrics = json.loads((smoke_model / "metrics.json").read_text())
    for name in ("loss.png", "confusion.png", "calibration.png", "model.safetensors", "labels.json",
                 "calibration.json", "history.json"):
        assert (smoke_model / name).is_file(), name
    assert metrics["steps"] == 40 and metrics["last_loss"] < metrics["first_loss"]
    assert 0 <= metrics["ece"] <= 1 and metrics["temperature"] > 0
    assert metrics["baseline_tfidf_logreg"]["accuracy"] > 0.5
    assert "product_search" in metrics["labels"] and "track_order" in metrics["labels"]
    assert latest_model(smoke_model.parent, "intent") == smoke_model


def test_the_saved_model_predicts_calibrated_known_labels(smoke_model: Path) -> None:
    clf = IntentClassifier(smoke_model)
    out = clf.predict(["where is my package", "do you have waterproof hiking boots?"])
    assert len(out) == 2 and all(i.label in clf.labels and 0 < i.confidence <= 1 for i in out)


def test_missing_or_corrupt_classifier_is_a_clear_error(smoke_model: Path, tmp_path: Path) -> None:
    with pytest.raises(SignalsError, match="aisle finetune classifier"):
        IntentClassifier(None)
    with pytest.raises(SignalsError, match="aisle finetune classifier"):
        IntentClassifier(tmp_path / "nope")
    broken = tmp_path / "intent-broken"
    shutil.copytree(smoke_model, broken)
    (broken / "model.safetensors").write_bytes(b"not a model")
    with pytest.raises(SignalsError, match="corrupt"):
        IntentClassifier(broken)
    (broken / "labels.json").unlink()
    with pytest.raises(SignalsError, match="missing"):
        IntentClassifier(broken)
