"""BM25 over product text (bm25s), so exact SKUs, model numbers and brands are found."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.catalog import ProductDoc


def lexical_text(doc: ProductDoc) -> str:
    attrs = " ".join(str(v) for v in doc.attributes.values() if isinstance(v, str | int | float))
    return f"{doc.sku} {doc.title} {doc.brand} {doc.category} {attrs}"


class LexicalIndex:
    """BM25 over slot-aligned product texts (``None`` for removed slots).

    The BM25 index is static: call :meth:`rebuild` after adding, removing or
    renaming products. Price and stock changes need no rebuild.
    """

    def __init__(self, docs: Sequence[ProductDoc | None]) -> None:
        self.size = 0
        self.rebuild(docs)

    def rebuild(self, docs: Sequence[ProductDoc | None]) -> None:
        import bm25s

        texts = [lexical_text(d) if d is not None else "" for d in docs]
        self.retriever = bm25s.BM25()
        self.retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
        self.size = len(texts)

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-``k`` (slot, score) with a positive BM25 score, restricted to ``mask`` if given."""
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab or k <= 0:
            return []
        weight = None
        if mask is not None:
            weight = np.zeros(self.size, dtype=np.float32)
            weight[: len(mask)] = mask[: self.size]
        ids, scores = self.retriever.retrieve(tokens, k=min(k, self.size), show_progress=False,
                                              weight_mask=weight, n_threads=1)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
