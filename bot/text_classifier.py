"""The classifier's model: MiniLM with mean pooling, an optional numeric input, and a linear head.

One model class serves the three tasks. all-MiniLM-L6-v2 was trained with mean
pooling, so its [CLS] pooler is untrained; the head reads the mean of the token
states instead. Churn adds standardised recency/frequency/monetary features to
the pooled vector, feeding the same head. Sentiment may also blend in a small
lexical model (TF-IDF + logistic regression, stored as arrays, never pickled).

A directory written by :func:`save` holds the encoder, the tokenizer,
``head.safetensors`` and ``classifier.json`` (labels, feature scaling, blend
weights, per-class bias and temperature).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CONFIG = "classifier.json"
HEAD = "head.safetensors"
LEXICAL = "lexical.npz"


@dataclass
class ClassifierConfig:
    """Everything besides weights that inference needs, saved as ``classifier.json``."""

    task: str
    labels: list[str]
    max_len: int = 64
    feature_names: list[str] = field(default_factory=list)
    feature_mean: list[float] = field(default_factory=list)
    feature_std: list[float] = field(default_factory=list)
    encoder_weight: float = 1.0  # blend: weight of the encoder's log-probabilities vs the lexical model's
    bias: list[float] = field(default_factory=list)  # added to the blended log-probabilities (decision thresholds)
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if len(self.labels) < 2:
            raise ValueError("a classifier needs at least two labels")
        if not self.bias:
            self.bias = [0.0] * len(self.labels)
        if len(self.bias) != len(self.labels):
            raise ValueError("one bias per label")
        if not 0.0 <= self.encoder_weight <= 1.0 or self.temperature <= 0:
            raise ValueError("encoder_weight must be in [0, 1] and temperature positive")


class PooledClassifier(nn.Module):
    """BERT encoder -> masked mean pooling (+ numeric features) -> dropout -> linear head."""

    def __init__(self, encoder: Any, n_labels: int, n_features: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.n_features = n_features
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden + n_features, n_labels)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                features: torch.Tensor | None = None) -> torch.Tensor:
        x = self.pooled(input_ids, attention_mask)
        if self.n_features:
            if features is None or features.shape[-1] != self.n_features:
                raise ValueError(f"this model needs {self.n_features} numeric features per example")
            x = torch.cat([x, features.to(x.dtype)], dim=-1)
        return self.head(self.dropout(x))


@dataclass
class LexicalModel:
    """TF-IDF (1-2-grams, sublinear tf) + multinomial logistic regression, as plain arrays."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    _vectorizer: Any = field(default=None, repr=False)

    @classmethod
    def fit(cls, texts: list[str], labels: list[int], *, balanced: bool = True, c: float = 10.0) -> LexicalModel:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
        x = vec.fit_transform(texts)
        lr = LogisticRegression(max_iter=2000, class_weight="balanced" if balanced else None, C=c)
        lr.fit(x, labels)
        coef, intercept = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # sklearn keeps one row for two classes
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        vocab = {str(k): int(v) for k, v in vec.vocabulary_.items()}
        return cls(vocab, np.asarray(vec.idf_, dtype=np.float64), np.asarray(coef, dtype=np.float64),
                   np.asarray(intercept, dtype=np.float64))

    def _vec(self) -> Any:
        if self._vectorizer is None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, vocabulary=self.vocabulary)
            vec.idf_ = self.idf
            self._vectorizer = vec
        return self._vectorizer

    def log_probs(self, texts: list[str]) -> np.ndarray:
        z = np.asarray(self._vec().transform(texts) @ self.coef.T) + self.intercept
        z = z - z.max(axis=1, keepdims=True)
        return np.asarray(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))

    def save(self, path: Path) -> None:
        """Weights stored in float32 (half the size; the log-probabilities move by about 1e-7)."""
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        np.savez_compressed(path, terms=np.array(terms, dtype=object).astype(str), idf=self.idf.astype(np.float32),
                            coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32))

    @classmethod
    def load(cls, path: Path) -> LexicalModel:
        with np.load(path, allow_pickle=False) as z:
            terms = [str(t) for t in z["terms"]]
            return cls({t: i for i, t in enumerate(terms)}, *(np.asarray(z[k], dtype=np.float64)
                                                              for k in ("idf", "coef", "intercept")))


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return np.asarray(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))


def softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(z))


def blend(config: ClassifierConfig, encoder_logits: np.ndarray, lexical: np.ndarray | None) -> np.ndarray:
    """Calibrated probabilities from the encoder's logits and, if present, the lexical log-probabilities."""
    z = log_softmax(encoder_logits)
    if lexical is not None:
        z = config.encoder_weight * z + (1.0 - config.encoder_weight) * lexical
    return softmax((z + np.asarray(config.bias)) / config.temperature)


def save(out: Path, model: PooledClassifier, tokenizer: Any, config: ClassifierConfig,
         lexical: LexicalModel | None = None) -> None:
    """Write a model directory that :func:`load` reads back."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_file({k: v.detach().contiguous() for k, v in model.head.state_dict().items()}, str(out / HEAD))
    (out / CONFIG).write_text(json.dumps(asdict(config), indent=2))
    if lexical is not None:
        lexical.save(out / LEXICAL)


def load(path: Path) -> tuple[PooledClassifier, Any, ClassifierConfig, LexicalModel | None]:
    """Read a directory written by :func:`save`; any problem raises (the caller explains it)."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertModel

    config = ClassifierConfig(**json.loads((path / CONFIG).read_text()))
    encoder = BertModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False)
    model = PooledClassifier(encoder, len(config.labels), len(config.feature_names))
    model.head.load_state_dict(load_file(str(path / HEAD)))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    lexical = LexicalModel.load(path / LEXICAL) if (path / LEXICAL).is_file() else None
    return model.eval(), tokenizer, config, lexical
