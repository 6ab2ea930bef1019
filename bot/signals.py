"""Classifier inference: intent and sentiment of each shopper message, churn risk of each shopper.

Each model is a directory written by ``aisle finetune classifier``. A missing
or corrupt directory raises :class:`SignalsError` with the fix in its message;
nothing here ever falls back to a neutral guess. The encoders' linear layers
run in int8 by default (dynamic quantisation), which is what keeps a message
under a few milliseconds on two cores; ``aisle bench classifier`` reports the
agreement with float32.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REQUIRED = ("config.json", "model.safetensors", "head.safetensors", "classifier.json")
CHUNK = 16  # texts per forward pass when scoring a batch


class SignalsError(RuntimeError):
    """A classifier directory is missing or corrupt; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class Intent:
    label: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: str
    confidence: float
    negative: float  # calibrated probability that the message is negative

    def coarse(self) -> str:
        """Words for the prompt, never the raw probability."""
        if self.label == "negative":
            return "upset" if self.negative >= 0.8 else "somewhat unhappy"
        return "content" if self.label == "positive" else "neutral"


def latest_model(parent: Path, task: str) -> Path | None:
    """The newest versioned model directory for ``task`` under ``parent``."""
    found = sorted(p for p in parent.glob(f"{task}-*") if p.is_dir()) if parent.is_dir() else []
    return found[-1] if found else None


def _fix(task: str) -> str:
    return f"train one with `aisle finetune classifier --task {task}`, or set AISLE_SIGNALS=false"


def quantized(model: Any) -> Any:
    """The model with its linear layers in int8 (dynamic quantisation)."""
    import torch

    with warnings.catch_warnings():  # the eager-mode API is deprecated in favour of torchao, still supported
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class TaskModel:
    """One classifier directory, loaded for inference."""

    task = ""

    def __init__(self, model_dir: Path | None, *, int8: bool = True) -> None:
        task = self.task
        if model_dir is None or not model_dir.is_dir():
            raise SignalsError(f"no {task} classifier found ({model_dir}); {_fix(task)}")
        missing = [f for f in REQUIRED if not (model_dir / f).is_file()]
        if missing:
            raise SignalsError(f"{task} classifier at {model_dir} is incomplete (missing {missing}); {_fix(task)}")
        import torch

        from bot.text_classifier import load

        try:
            model, self.tokenizer, self.config, self.lexical = load(model_dir)
        except Exception as exc:
            raise SignalsError(f"{task} classifier at {model_dir} is corrupt ({exc}); {_fix(task)}") from exc
        if self.config.task != task:
            raise SignalsError(f"{model_dir} holds a {self.config.task} classifier, not {task}; {_fix(task)}")
        self.model = quantized(model) if int8 else model
        self.labels = self.config.labels
        self.path = model_dir
        self._torch = torch

    def probs(self, texts: Sequence[str], features: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probabilities, one row per text, scored in one batch."""
        from bot.text_classifier import blend

        texts = list(texts)
        ids = self.tokenizer(texts, truncation=True, max_length=self.config.max_len)["input_ids"]
        feats = None
        if self.config.feature_names:
            if features is None:
                raise ValueError(f"the {self.task} model needs features {self.config.feature_names}")
            feats = (np.asarray(features) - np.asarray(self.config.feature_mean)) / np.asarray(self.config.feature_std)
        logits = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        order = np.argsort([len(x) for x in ids], kind="stable")  # similar lengths together: little padding
        with self._torch.inference_mode():
            for start in range(0, len(order), CHUNK):
                idx = order[start: start + CHUNK]
                enc = self.tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
                f = self._torch.as_tensor(feats[idx], dtype=self._torch.float32) if feats is not None else None
                logits[idx] = self.model(enc["input_ids"], enc["attention_mask"], f).numpy()
        lexical = self.lexical.log_probs(texts) if self.lexical is not None else None
        return blend(self.config, logits, lexical)


class IntentClassifier(TaskModel):
    task = "intent"

    def predict(self, texts: list[str]) -> list[Intent]:
        if not texts:
            return []
        probs = self.probs(texts)
        return [Intent(self.labels[int(i)], round(float(p[i]), 4)) for p, i in zip(probs, probs.argmax(axis=1), strict=True)]


class SentimentClassifier(TaskModel):
    task = "sentiment"

    def predict(self, texts: list[str]) -> list[Sentiment]:
        if not texts:
            return []
        probs = self.probs(texts)
        neg = self.labels.index("negative")
        return [Sentiment(self.labels[int(i)], round(float(p[i]), 4), round(float(p[neg]), 4))
                for p, i in zip(probs, probs.argmax(axis=1), strict=True)]


class ChurnModel(TaskModel):
    task = "churn"

    def predict(self, texts: list[str], features: list[list[float]]) -> list[float]:
        """Calibrated probability of no purchase in the next 90 days, per shopper."""
        if not texts:
            return []
        return [round(float(p[1]), 4) for p in self.probs(texts, np.asarray(features, dtype=np.float64))]


@dataclass(frozen=True, slots=True)
class MessageSignals:
    """What one shopper message carries into the turn."""

    intent: Intent | None
    sentiment: Sentiment | None

    def as_meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.intent:
            out["intent"] = {"label": self.intent.label, "confidence": self.intent.confidence}
        if self.sentiment:
            out["sentiment"] = {"label": self.sentiment.label, "confidence": self.sentiment.confidence,
                                "negative": self.sentiment.negative}
        return out


class MessageScorer:
    """Intent and sentiment for a batch of messages (used through a micro-batcher)."""

    def __init__(self, intent: IntentClassifier, sentiment: SentimentClassifier) -> None:
        self.intent = intent
        self.sentiment = sentiment

    def score(self, texts: list[str]) -> list[MessageSignals]:
        intents, moods = self.intent.predict(texts), self.sentiment.predict(texts)
        return [MessageSignals(i, s) for i, s in zip(intents, moods, strict=True)]


def load_signals(parent: Path, *, int8: bool = True) -> tuple[MessageScorer, ChurnModel]:
    """The newest intent, sentiment and churn models under ``parent``; raises SignalsError with the fix."""
    intent = IntentClassifier(latest_model(parent, "intent") or parent / "intent-*", int8=int8)
    sentiment = SentimentClassifier(latest_model(parent, "sentiment") or parent / "sentiment-*", int8=int8)
    churn = ChurnModel(latest_model(parent, "churn") or parent / "churn-*", int8=int8)
    return MessageScorer(intent, sentiment), churn
