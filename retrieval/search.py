"""Product search for a chat turn: hard filters from the text, dense + BM25 fused by rank.

Dense retrieval (MiniLM + FAISS) finds what the shopper means; BM25 finds the
exact SKUs, model numbers and brands an embedding can miss. The two ranked
lists are fused with reciprocal rank fusion.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from retrieval.catalog import ProductDoc
from retrieval.embed import Encoder
from retrieval.index import Hit, ProductIndex
from retrieval.lexical import LexicalIndex
from retrieval.query import Filters, parse_filters

SKU_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{2,63}")


CHEAPEST_POOL = 3
"""For "the cheapest ...": the cheapest ``k`` among the ``3 k`` most relevant products."""


def by_price(hits: list[Hit], k: int) -> list[Hit]:
    """The ``k`` cheapest hits, cheapest first (relevance breaks ties)."""
    return sorted(hits, key=lambda h: h.product.price)[:k]


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

    def __init__(self, index: ProductIndex, encoder: Encoder, context_weight: float = 0.3,
                 lexical: bool = True, rrf_k: int = 60, pool: int = 50) -> None:
        if not 0 <= context_weight < 1:
            raise ValueError("context_weight must be in [0, 1)")
        self.index = index
        self.encoder = encoder
        self.context_weight = context_weight
        self.lexical = LexicalIndex(index.docs) if lexical else None
        self.rrf_k = rrf_k
        self.pool = pool

    @staticmethod
    def query_texts(text: str, context: Sequence[str] = ()) -> list[str]:
        """The texts whose embeddings make the query: the message and up to two earlier ones."""
        return [text, *context[-2:]]

    def query_vector(self, text: str, context: Sequence[str] = ()) -> np.ndarray:
        return self.combine(self.encoder.encode_query(self.query_texts(text, context)))

    def combine(self, vectors: np.ndarray) -> np.ndarray:
        """One query vector from the message's embedding and its context's."""
        q = vectors[0]
        if len(vectors) > 1:
            q = (1 - self.context_weight) * q + self.context_weight * vectors[1:].mean(axis=0)
        return q / max(float(np.linalg.norm(q)), 1e-12)

    def search(self, text: str, *, context: Sequence[str] = (), k: int = 5,
               filters: Filters | None = None, query: np.ndarray | None = None) -> SearchResult:
        """Top-``k`` products for ``text``.

        Filters come from ``filters`` if given, else from the text, with the price bounds of the most recent
        earlier message that states any where the text states none ("in stock ones only" and "the cheapest
        one?" keep the budget said earlier).
        """
        if filters is None:
            filters = parse_filters(text)
            if filters.min_price is None and filters.max_price is None:
                for earlier in reversed(context):
                    if not (prior := parse_filters(earlier)).unconstrained:
                        filters = replace(prior, in_stock=prior.in_stock or filters.in_stock,
                                          cheapest=prior.cheapest or filters.cheapest)
                        break
        if query is None:
            query = self.query_vector(text, context)
        want = k * CHEAPEST_POOL if filters.cheapest else k
        dense = self.index.search(query, max(want, self.pool) if self.lexical else want, filters)
        if self.lexical is None:
            return SearchResult(by_price(dense, k) if filters.cheapest else dense, filters, query)
        mask = None if filters.unconstrained else self.index.mask(filters)
        lexical = self._lexical().search(text, self.pool, mask)
        pinned = [s for s in self.named_skus(text) if mask is None or mask[self.index.slot_of[s]]]
        hits = self.fuse(dense, lexical, query, want, pinned)
        return SearchResult(by_price(hits, k) if filters.cheapest else hits, filters, query)

    def _lexical(self) -> LexicalIndex:
        """The BM25 index, rebuilt first when products were added or removed since it was built."""
        assert self.lexical is not None
        if self.lexical.size != len(self.index.docs):
            self.lexical.rebuild(self.index.docs)
        return self.lexical

    def lexical_docs(self, text: str, k: int) -> list[ProductDoc]:
        """The top-``k`` products BM25 finds for ``text`` (none without a lexical index)."""
        if self.lexical is None:
            return []
        return [d for slot, _ in self._lexical().search(text, k) if (d := self.index.docs[slot]) is not None]

    def nearest(self, texts: Sequence[str], k: int) -> list[list[Hit]]:
        """For each text alone (no context, no filters), the ``k`` products the encoder puts nearest."""
        return [self.index.search(v, k) for v in self.encoder.encode_query(list(texts))] if texts else []

    def named_skus(self, text: str) -> list[str]:
        """Catalog SKUs written verbatim in the text, in order of mention."""
        found = []
        for raw in SKU_TOKEN.findall(text):
            token = raw.rstrip("._-")
            sku = token.upper()
            if sku in self.index.slot_of and sku not in found:
                found.append(sku)
            elif token in self.index.slot_of and token not in found:
                found.append(token)
        return found

    def fuse(self, dense: list[Hit], lexical: list[tuple[int, float]], query: np.ndarray, k: int,
             pinned: Sequence[str] = ()) -> list[Hit]:
        """Reciprocal rank fusion, after any SKUs the shopper named; hits keep their dense score."""
        fused: dict[str, float] = {}
        by_sku: dict[str, Hit] = {}
        for n, sku in enumerate(pinned):
            doc = self.index.get(sku)
            if doc is not None:
                fused[sku] = 10.0 - n
                by_sku[sku] = Hit(doc, float(self.index.vector(sku) @ query))
        for rank, hit in enumerate(dense):
            fused[hit.product.sku] = fused.get(hit.product.sku, 0.0) + 1 / (self.rrf_k + rank + 1)
            by_sku.setdefault(hit.product.sku, hit)
        for rank, (slot, _) in enumerate(lexical):
            doc = self.index.docs[slot]
            if doc is None:
                continue
            fused[doc.sku] = fused.get(doc.sku, 0.0) + 1 / (self.rrf_k + rank + 1)
            if doc.sku not in by_sku:
                by_sku[doc.sku] = Hit(doc, float(self.index.vector(doc.sku) @ query))
        order = sorted(fused, key=lambda s: -fused[s])[:k]
        return [by_sku[s] for s in order]
