from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.shopper_history import HistoryEvent, churn_features, render
from bot.signals import (
    ChurnModel,
    IntentClassifier,
    SentimentClassifier,
    SignalsError,
    TaskModel,
    latest_model,
    load_signals,
)
from finetune.classifier import ClassifierArgs
from finetune.train_classifier import main
from tests.conftest import data

pytestmark = pytest.mark.slow  # every test here reads models trained by the module's smoke runs (about a minute)

MODELS: dict[str, type[TaskModel]] = {"intent": IntentClassifier, "sentiment": SentimentClassifier,
                                      "churn": ChurnModel}
PLOTS = {"intent": "confusion.png", "sentiment": "confusion.png", "churn": "roc.png"}


@pytest.fixture(scope="module")
def smoke_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each task trained for a few steps on a small sample of the real data."""
    out = tmp_path_factory.mktemp("classifiers")
    from finetune.shipped_signals import folders

    return {task: main(ClassifierArgs(task=task, out_dir=out, data_dir=data(*folders(task)), epochs=1,
                                      max_steps=30, sample=480, batch_size=16), say=lambda _: None)
            for task in MODELS}


@pytest.mark.parametrize("task", list(MODELS))
def test_a_short_run_writes_the_report_and_the_loss_goes_down(smoke_models: dict[str, Path], task: str) -> None:
    path = smoke_models[task]
    metrics = json.loads((path / "metrics.json").read_text())
    for name in ("loss.png", PLOTS[task], "calibration.png", "model.safetensors", "head.safetensors",
                 "classifier.json", "history.json", "tokenizer.json"):
        assert (path / name).is_file(), name
    assert metrics["steps"] == 30 and metrics["last_loss"] < metrics["first_loss"]
    assert 0 <= metrics["ece"] <= 1 and metrics["temperature"] > 0
    assert latest_model(path.parent, task) == path
    history = json.loads((path / "history.json").read_text())
    assert history["val_step"][0] == 0 and len(history["val_score"]) >= 2  # the start is scored too


def test_each_task_reports_its_baseline(smoke_models: dict[str, Path]) -> None:
    intent = json.loads((smoke_models["intent"] / "metrics.json").read_text())
    assert intent["baseline_tfidf_logreg"]["accuracy"] > 0.5 and "product_search" in intent["labels"]
    sentiment = json.loads((smoke_models["sentiment"] / "metrics.json").read_text())
    assert sentiment["labels"] == ["negative", "neutral", "positive"]
    assert 0 < sentiment["baseline_tfidf_logreg"]["macro_f1"] <= 1 and 0 <= sentiment["encoder_weight"] <= 1
    assert set(sentiment["per_label_f1"]) == {"negative", "neutral", "positive"}
    churn = json.loads((smoke_models["churn"] / "metrics.json").read_text())
    assert churn["test_examples"] == 960  # a quick run scores a random share of the test cut-off
    assert churn["datasets"]["online_retail"]["examples"] > 500 and churn["datasets"]["demo"]["examples"] > 30
    assert 0.5 < churn["baseline_auc"] <= 1 and 0 <= churn["auc"] <= 1
    for source in ("online_retail", "demo"):  # shifted so today's mean prediction is the look-back estimate
        figures = churn["datasets"][source]
        assert 0 < figures["estimated_churn_rate"] < 1 and figures["reference_lookback"]["train_rows"] > 100
        assert figures["mean_predicted"] == pytest.approx(figures["estimated_churn_rate"], abs=2e-3)
    assert churn["served_prior_offset"] == churn["datasets"]["demo"]["prior_offset"]
    # early stopping keeps the best held-out score, and the start is the RFM baseline itself
    assert churn["held_auc_best"] >= churn["held_auc_start"] > 0.6


def test_the_saved_models_predict_calibrated_known_labels(smoke_models: dict[str, Path]) -> None:
    intent = IntentClassifier(smoke_models["intent"])
    out = intent.predict(["where is my package", "do you have waterproof hiking boots?"])
    assert len(out) == 2 and all(i.label in intent.labels and 0 < i.confidence <= 1 for i in out)
    sentiment = SentimentClassifier(smoke_models["sentiment"], int8=False)
    moods = sentiment.predict(["I love it, perfect fit", "Terrible quality, it fell apart. Returning it."])
    assert all(m.label in ("negative", "neutral", "positive") and 0 <= m.negative <= 1 for m in moods)
    assert moods[1].negative > moods[0].negative
    churn = ChurnModel(smoke_models["churn"])
    now = datetime(2011, 6, 10)
    lapsed = [HistoryEvent(now - timedelta(days=250), "purchase", "Mug", 12.0, "A1")]
    loyal = [HistoryEvent(now - timedelta(days=d), "purchase", "Tea", 225.0, f"B{d}") for d in range(2, 300, 7)]
    risk = churn.predict([render(lapsed, now), render(loyal, now)],
                         [churn_features(lapsed, now), churn_features(loyal, now)])
    assert all(0 < r < 1 for r in risk) and risk[0] > risk[1]


def test_int8_scores_agree_with_float32(smoke_models: dict[str, Path]) -> None:
    texts = ["the dress is lovely", "awful, it broke after a day", "it's okay I guess", "where is my order?"]
    a = SentimentClassifier(smoke_models["sentiment"], int8=True).probs(texts)
    b = SentimentClassifier(smoke_models["sentiment"], int8=False).probs(texts)
    assert abs(a - b).max() < 0.1


@pytest.mark.parametrize("task", list(MODELS))
def test_missing_or_corrupt_classifier_is_a_clear_error(smoke_models: dict[str, Path], tmp_path: Path,
                                                         task: str) -> None:
    cls = MODELS[task]
    fix = f"aisle finetune classifier --task {task}"
    with pytest.raises(SignalsError, match=fix):
        cls(None)
    with pytest.raises(SignalsError, match=fix):
        cls(tmp_path / "nope")
    broken = tmp_path / f"{task}-broken"
    shutil.copytree(smoke_models[task], broken)
    (broken / "head.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(SignalsError, match="corrupt"):
        cls(broken)
    (broken / "classifier.json").unlink()
    with pytest.raises(SignalsError, match="missing"):
        cls(broken)
    other = next(t for t in MODELS if t != task)
    with pytest.raises(SignalsError, match=f"not {task}"):
        cls(smoke_models[other])


def test_loading_all_signals_needs_every_model(smoke_models: dict[str, Path], tmp_path: Path) -> None:
    for task in ("intent", "sentiment"):
        shutil.copytree(smoke_models[task], tmp_path / smoke_models[task].name)
    with pytest.raises(SignalsError, match="no churn classifier"):
        load_signals(tmp_path)
    shutil.copytree(smoke_models["churn"], tmp_path / smoke_models["churn"].name)
    scorer, churn = load_signals(tmp_path)
    (signals,) = scorer.score(["how do I return this"])
    assert signals.intent is not None and signals.sentiment is not None
    assert set(signals.as_meta()) == {"intent", "sentiment"}


@pytest.mark.parametrize("task", ["intent", "sentiment"])
def test_a_shipped_copy_scores_exactly_like_the_model_it_came_from(smoke_models: dict[str, Path], tmp_path: Path,
                                                                   task: str) -> None:
    import numpy as np

    from finetune import shipped_signals

    root = tmp_path / "signals"
    manifest = shipped_signals.write(smoke_models[task], data(), root=root)
    assert manifest["trained_from"] == smoke_models[task].name
    shipped = (root / task / shipped_signals.WEIGHTS).stat().st_size
    assert shipped < 0.2 * (smoke_models[task] / "model.safetensors").stat().st_size  # layers only, int8
    out = shipped_signals.install(task, tmp_path / "out", data(), say=lambda _: None, root=root)
    assert out.name == smoke_models[task].name
    texts = ["where is my order?", "great, another delay. just great.", "love the jacket, thanks!"]
    model = MODELS[task]
    np.testing.assert_allclose(model(out, int8=False).probs(texts), model(smoke_models[task], int8=False).probs(texts),
                               atol=1e-5)
