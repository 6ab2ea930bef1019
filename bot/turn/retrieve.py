"""Retrieval for a turn: the query vector (the message with its context, embeddings batched across concurrent
turns and kept for the next turns) and the products, personalised for a shopper with a profile."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from bot.personalize import Personalizer
from bot.signals import MessageSignals
from retrieval.batching import MicroBatcher
from retrieval.catalog import ProductDoc
from retrieval.query import Filters
from retrieval.search import ProductSearch

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small least-recently-used map (event-loop use only)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return None

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


@dataclass(frozen=True)
class TurnBatchers:
    """Batch the per-turn model calls of concurrent turns (query embeddings, intent and sentiment)."""

    encode: MicroBatcher[np.ndarray]
    signals: MicroBatcher[MessageSignals] | None = None

    async def aclose(self) -> None:
        await self.encode.aclose()
        if self.signals is not None:
            await self.signals.aclose()


class QueryVectors:
    """The query vector of a message in its conversation; message embeddings are kept for the next turns."""

    def __init__(self, search: ProductSearch, size: int = 4096) -> None:
        self.search = search
        self._vectors: LRU[tuple[int, str], np.ndarray] = LRU(size)

    async def query(self, conversation_id: int, text: str, vector: np.ndarray | None, earlier: list[str],
                    batchers: TurnBatchers | None) -> np.ndarray | None:
        """The message's vector with its context's (earlier messages, embedded in their own turns)."""
        if vector is None or batchers is None:
            return None
        self._vectors.put((conversation_id, text), vector)
        context = self.search.query_texts(text, earlier)[1:]
        found = [self._vectors.get((conversation_id, t)) for t in context]
        missing = [t for t, v in zip(context, found, strict=True) if v is None]  # e.g. after a restart
        computed = iter(await batchers.encode.submit(missing) if missing else [])
        vectors = [v if v is not None else next(computed) for v in found]
        return self.search.combine(np.stack([vector, *vectors]))


def retrieve(search: ProductSearch, personalizer: Personalizer | None, *, user_id: int, text: str,
             earlier: list[str], k: int, query: np.ndarray | None = None, filters: Filters | None = None
             ) -> tuple[list[ProductDoc], list[float], list[str], str, str | None]:
    """Products for the turn with their scores and reasons, the constraint, and the profile (``filters``: the
    search's, when the turn decided them; else read from the text and its context)."""
    found = search.search(text, context=earlier, k=k, query=query, filters=filters)
    scores = [h.score for h in found.hits]
    if personalizer is not None:
        best = found.hits[0].score if found.hits else 0.0
        mine = personalizer.recommend(user_id, found.query, best, k, found.filters)
        if not mine.profile.cold and mine.recommendations:
            recs = mine.recommendations
            personalizer.shown([r.product.sku for r in recs])
            return ([r.product for r in recs], [r.score for r in recs], [r.reason for r in recs],
                    found.filters.describe(), mine.describe())
    return ([h.product for h in found.hits], scores, ["relevance"] * len(scores), found.filters.describe(), None)
