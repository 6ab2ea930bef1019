"""Product search for a chat turn: hard filters from the text, dense ranking with context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.embed import Encoder
from retrieval.index import Hit, ProductIndex
from retrieval.query import Filters, parse_filters


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[Hit]
    filters: Filters
    query: np.ndarray


class ProductSearch:
    """Search the index for a shopper message, weighting in earlier shopper messages.

    Args:
        index: the product index.
        encoder: the query encoder.
        context_weight: weight of the earlier messages in the query vector.
    """

    def __init__(self, index: ProductIndex, encoder: Encoder, context_weight: float = 0.3) -> None:
        if not 0 <= context_weight < 1:
            raise ValueError("context_weight must be in [0, 1)")
        self.index = index
        self.encoder = encoder
        self.context_weight = context_weight

    def query_vector(self, text: str, context: Sequence[str] = ()) -> np.ndarray:
        vectors = self.encoder.encode_query([text, *context[-2:]])
        q = vectors[0]
        if len(vectors) > 1:
            q = (1 - self.context_weight) * q + self.context_weight * vectors[1:].mean(axis=0)
        return q / max(float(np.linalg.norm(q)), 1e-12)

    def search(self, text: str, *, context: Sequence[str] = (), k: int = 5,
               filters: Filters | None = None) -> SearchResult:
        """Top-``k`` products for ``text``.

        Filters come from ``filters`` if given, else from the text, else from the
        most recent earlier message that states any.
        """
        if filters is None:
            filters = parse_filters(text)
            for earlier in reversed(context):
                if not filters.empty:
                    break
                filters = parse_filters(earlier)
        query = self.query_vector(text, context)
        return SearchResult(self.index.search(query, k, filters), filters, query)
