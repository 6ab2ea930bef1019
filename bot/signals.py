"""Classifier inference: the intent of each shopper message (sentiment and churn are planned)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FIX = "train one with `aisle finetune classifier --task intent`, or set AISLE_SIGNALS=false"
REQUIRED = ("config.json", "model.safetensors", "labels.json", "calibration.json")


class SignalsError(RuntimeError):
    """A classifier directory is missing or corrupt; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class Intent:
    label: str
    confidence: float


def latest_model(parent: Path, task: str) -> Path | None:
    """The newest versioned model directory for ``task`` under ``parent``."""
    found = sorted(p for p in parent.glob(f"{task}-*") if p.is_dir()) if parent.is_dir() else []
    return found[-1] if found else None


class IntentClassifier:
    """Calibrated intent predictions from a directory written by ``aisle finetune classifier``."""

    def __init__(self, model_dir: Path | None) -> None:
        if model_dir is None or not model_dir.is_dir():
            raise SignalsError(f"no intent classifier found ({model_dir}); {FIX}")
        missing = [f for f in REQUIRED if not (model_dir / f).is_file()]
        if missing:
            raise SignalsError(f"intent classifier at {model_dir} is incomplete (missing {missing}); {FIX}")
        import torch
        from transformers import AutoTokenizer, BertForSequenceClassification

        try:
            self.labels: list[str] = json.loads((model_dir / "labels.json").read_text())
            self.temperature = float(json.loads((model_dir / "calibration.json").read_text())["temperature"])
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            self.model = BertForSequenceClassification.from_pretrained(model_dir, local_files_only=True).eval()
        except Exception as exc:
            raise SignalsError(f"intent classifier at {model_dir} is corrupt ({exc}); {FIX}") from exc
        if self.model.config.num_labels != len(self.labels):
            raise SignalsError(f"intent classifier at {model_dir} has mismatched labels; {FIX}")
        self._torch = torch
        self.path = model_dir

    def predict(self, texts: list[str]) -> list[Intent]:
        """One calibrated prediction per text, scored in one batch."""
        if not texts:
            return []
        enc = self.tokenizer(texts, truncation=True, max_length=64, padding=True, return_tensors="pt")
        with self._torch.no_grad():
            logits = self.model(**enc).logits.numpy() / self.temperature
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = z / z.sum(axis=1, keepdims=True)
        return [Intent(self.labels[int(i)], round(float(p[i]), 4)) for p, i in zip(probs, probs.argmax(axis=1), strict=True)]
