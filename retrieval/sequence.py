"""Next-item signal from behaviour sequences: item2vec by PPMI + truncated SVD.

Skip-gram with negative sampling factorises a shifted PMI matrix (Levy and
Goldberg, 2014); we factorise the positive PMI of items that occur within a
window of each other in shoppers' time-ordered sequences directly, which is
deterministic and fast on two cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import svds


@dataclass(frozen=True)
class Item2VecConfig:
    dim: int = field(default=48, metadata={"help": "Embedding size."})
    window: int = field(default=4, metadata={"help": "Items on each side that count as context."})
    context_items: int = field(default=5, metadata={"help": "Recent items averaged for a prediction."})

    def __post_init__(self) -> None:
        if self.dim < 2 or self.window < 1 or self.context_items < 1:
            raise ValueError("dim >= 2, window >= 1 and context_items >= 1 are required")


class Item2Vec:
    """Item vectors learned from sequences of item indices."""

    def __init__(self, n_items: int, config: Item2VecConfig | None = None) -> None:
        self.n_items = n_items
        self.config = config or Item2VecConfig()
        self.vectors = np.zeros((n_items, self.config.dim), dtype=np.float32)

    def fit(self, sequences: Sequence[Sequence[int]]) -> Item2Vec:
        """Learn vectors from time-ordered item sequences (one per shopper)."""
        rows: list[int] = []
        cols: list[int] = []
        w = self.config.window
        for seq in sequences:
            for i, a in enumerate(seq):
                for b in seq[max(0, i - w): i]:
                    if a != b:
                        rows += [a, b]
                        cols += [b, a]
        n = self.n_items
        counts = sparse.coo_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n, n)).tocsr()
        total = counts.sum()
        if total == 0:
            return self
        row_sum = np.asarray(counts.sum(axis=1)).ravel()
        col_sum = np.asarray(counts.sum(axis=0)).ravel() ** 0.75  # context smoothing as in word2vec
        col_sum *= row_sum.sum() / max(col_sum.sum(), 1e-12)
        coo = counts.tocoo()
        pmi = np.log(coo.data * total / (row_sum[coo.row] * col_sum[coo.col] + 1e-12))
        keep = pmi > 0
        ppmi = sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=(n, n))
        k = min(self.config.dim, n - 2)
        if ppmi.nnz == 0 or k < 1:
            return self
        u, s, _ = svds(ppmi, k=k, random_state=0)
        vec = u * np.sqrt(s)
        norms = np.linalg.norm(vec, axis=1, keepdims=True)
        self.vectors = np.zeros((n, self.config.dim), dtype=np.float32)
        self.vectors[:, :k] = (vec / np.maximum(norms, 1e-12)).astype(np.float32)
        return self

    def next_item_scores(self, history: Sequence[int]) -> np.ndarray:
        """Similarity of every item to the shopper's most recent items."""
        recent = list(history)[-self.config.context_items:]
        if not recent:
            return np.zeros(self.n_items, dtype=np.float32)
        query = self.vectors[recent].mean(axis=0)
        return self.vectors @ query
