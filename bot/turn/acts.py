"""The act of a shopper's message, from a trained classifier (labels in :data:`finetune.acts.ACTS`).

The classifier reads the vector the search already computes for the message (the packaged all-MiniLM-L6-v2,
L2-normalised), so it costs one small matrix product per turn: a multinomial logistic regression on that vector,
blended with a TF-IDF one on the words (weights, blend and temperature tuned on held-out examples by
``aisle finetune acts``). Both ship in ``finetune/shipped/acts/`` as plain arrays (no pickle) with the figures
they reached. References, slots and the facts are resolved by code (:mod:`bot.turn.understand`,
:mod:`bot.turn.assortment`); the act decides what kind of answer a message gets where no rule is the right
tool: greetings, thanks and small talk are answered by the server, and the act is kept in each reply's meta.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.text_classifier import LexicalModel, log_softmax, softmax

SHIPPED_ACTS = Path(__file__).resolve().parents[2] / "finetune" / "shipped" / "acts"
HEAD = "head.npz"
LEXICAL = "lexical.npz"
CONFIG = "acts.json"


@dataclass(frozen=True, slots=True)
class ActGuess:
    label: str
    confidence: float


@dataclass(frozen=True)
class ActModel:
    """A linear head on the message's sentence vector, optionally blended with a lexical model."""

    labels: list[str]
    coef: np.ndarray  # (labels, dim)
    intercept: np.ndarray  # (labels,)
    lexical: LexicalModel | None = None
    encoder_weight: float = 1.0
    temperature: float = 1.0

    def probabilities(self, texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if vectors.shape != (len(texts), self.coef.shape[1]):
            raise ValueError(f"need one {self.coef.shape[1]}-dim vector per text, got {vectors.shape}")
        z = log_softmax(vectors @ self.coef.T + self.intercept)
        if self.lexical is not None and self.encoder_weight < 1.0:
            z = self.encoder_weight * z + (1 - self.encoder_weight) * self.lexical.log_probs(list(texts))
        return softmax(z / self.temperature)

    def predict(self, texts: Sequence[str], vectors: np.ndarray) -> list[ActGuess]:
        probs = self.probabilities(texts, vectors)
        return [ActGuess(self.labels[int(i)], round(float(p[i]), 4)) for p, i in zip(probs, probs.argmax(1),
                                                                                      strict=True)]

    def save(self, out: Path, extra: dict[str, object] | None = None) -> None:
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / HEAD, coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32))
        if self.lexical is not None:
            self.lexical.save(out / LEXICAL)
        elif (out / LEXICAL).exists():
            (out / LEXICAL).unlink()
        config = {"labels": self.labels, "encoder_weight": self.encoder_weight, "temperature": self.temperature,
                  **(extra or {})}
        (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path = SHIPPED_ACTS) -> ActModel:
        """The act model in ``path``; raises FileNotFoundError or ValueError naming what is wrong."""
        config = json.loads((path / CONFIG).read_text())
        with np.load(path / HEAD, allow_pickle=False) as z:
            coef, intercept = np.asarray(z["coef"], np.float64), np.asarray(z["intercept"], np.float64)
        if coef.shape[0] != len(config["labels"]) or intercept.shape != (coef.shape[0],):
            raise ValueError(f"{path / HEAD}: {coef.shape[0]} rows for {len(config['labels'])} labels")
        lexical = LexicalModel.load(path / LEXICAL) if (path / LEXICAL).is_file() else None
        return cls(list(config["labels"]), coef, intercept, lexical, float(config.get("encoder_weight", 1.0)),
                   float(config.get("temperature", 1.0)))
