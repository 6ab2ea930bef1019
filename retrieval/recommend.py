"""Ranking: relevance + personalization + popularity, MMR diversity, Thompson exploration.

The same feature code scores the catalog in offline evaluation
(:mod:`retrieval.evaluate`) and candidates at serving time, so what is
measured is what is served.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import sparse

from retrieval.catalog import ProductDoc
from retrieval.profile import ShopperProfile
from retrieval.query import Filters
from retrieval.sequence import Item2Vec

FEATURES = ("relevance", "profile", "cooccurrence", "sequence", "popularity", "category", "brand", "price", "rebuy")


@dataclass(frozen=True)
class RankWeights:
    """Weights of the standardised features (tuned offline, see retrieval.evaluate).

    ``relevance`` (similarity to the shopper's question) is zero offline, where there is no
    question; at serving time it dominates, so personalization re-orders what answers the
    question rather than replacing it.
    """

    relevance: float = 3.0
    profile: float = 0.6
    cooccurrence: float = 0.4
    sequence: float = 0.2
    popularity: float = 0.3
    category: float = 0.5
    brand: float = 0.2
    price: float = 0.2
    rebuy: float = 0.3

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class SignalTables:
    """Catalog-wide signals learned from behaviour: popularity, co-occurrence, item2vec."""

    skus: list[str]
    products: list[ProductDoc]
    vectors: np.ndarray
    popularity: np.ndarray
    cooc: sparse.csr_matrix
    item2vec: Item2Vec
    position: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.position = {s: i for i, s in enumerate(self.skus)}


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - float(x.mean())) / sd if sd > 1e-9 else np.zeros_like(x)


def cooccurrence_matrix(baskets: Sequence[Sequence[int]], n_items: int) -> sparse.csr_matrix:
    """Item-item cosine co-occurrence over baskets (a basket = items bought or carted together)."""
    rows, cols = [], []
    for b, items in enumerate(baskets):
        for i in set(items):
            rows.append(b)
            cols.append(i)
    x = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(baskets), n_items))
    c = (x.T @ x).tocsr()
    c.setdiag(0)
    c.eliminate_zeros()
    n = np.asarray(x.sum(axis=0)).ravel()
    inv = sparse.diags(1.0 / np.sqrt(np.maximum(n, 1.0)))
    return (inv @ c @ inv).tocsr()


POSITIVE = ("purchase", "cart")


def fit_tables(products: Sequence[ProductDoc], vectors: np.ndarray,
               events: Sequence[tuple[str, str, str, str]]) -> SignalTables:
    """Learn popularity, co-occurrence and item2vec from time-ordered events.

    Args:
        products: the catalog, in the order of ``vectors``.
        vectors: product embeddings.
        events: ``(user, sku, type, basket)`` tuples, oldest first.
    """
    skus = [p.sku for p in products]
    pos = {s: i for i, s in enumerate(skus)}
    popularity = np.zeros(len(skus))
    baskets: dict[str, list[int]] = defaultdict(list)
    sequences: dict[str, list[int]] = defaultdict(list)
    for user, sku, kind, basket in events:
        i = pos.get(sku)
        if i is None:
            continue
        if kind in POSITIVE:
            baskets[basket].append(i)
            sequences[user].append(i)
        if kind == "purchase":
            popularity[i] += 1
    return SignalTables(skus, list(products), vectors, popularity,
                        cooccurrence_matrix(list(baskets.values()), len(skus)),
                        Item2Vec(len(skus)).fit(list(sequences.values())))


def features(
    profile: ShopperProfile,
    tables: SignalTables,
    candidates: np.ndarray,
    history: Sequence[int],
    relevance: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Raw feature values for ``candidates`` (item positions) for one shopper."""
    vec = tables.vectors[candidates]
    n = len(candidates)
    out: dict[str, np.ndarray] = {"relevance": relevance if relevance is not None else np.zeros(n)}
    out["profile"] = vec @ profile.vector if profile.vector is not None else np.zeros(n)
    weights = {tables.position[s]: w for s, w in profile.item_weights.items() if w > 0 and s in tables.position}
    if weights:
        x = np.zeros(len(tables.skus), dtype=np.float32)
        for i, w in weights.items():
            x[i] = w
        out["cooccurrence"] = np.asarray(tables.cooc[candidates] @ x).ravel()
    else:
        out["cooccurrence"] = np.zeros(n)
    out["sequence"] = tables.item2vec.next_item_scores(history)[candidates] if history else np.zeros(n)
    out["popularity"] = np.log1p(tables.popularity[candidates])
    cats = dict(profile.categories)
    brands = dict(profile.brands)
    docs = [tables.products[i] for i in candidates]
    out["category"] = np.array([cats.get(d.category, 0.0) for d in docs])
    out["brand"] = np.array([brands.get(d.brand, 0.0) if d.brand else 0.0 for d in docs])
    if profile.median_price:
        m = math.log(profile.median_price + 1)
        out["price"] = -np.abs(np.log(np.array([d.price for d in docs]) + 1) - m)
    else:
        out["price"] = np.zeros(n)
    out["rebuy"] = np.array([max(profile.item_weights.get(d.sku, 0.0), 0.0) for d in docs])
    return out


def blend(feats: Mapping[str, np.ndarray], weights: RankWeights) -> np.ndarray:
    """Weighted sum of per-shopper standardised features."""
    w = weights.as_dict()
    total = np.zeros(len(next(iter(feats.values()))))
    for name, values in feats.items():
        if w.get(name):
            total += w[name] * _standardise(np.asarray(values, dtype=np.float64))
    return total


def mmr(scores: np.ndarray, vectors: np.ndarray, k: int, lam: float = 0.75) -> list[int]:
    """Maximal marginal relevance: positions of ``k`` items trading score against similarity."""
    if len(scores) == 0:
        return []
    s = _standardise(scores)
    chosen: list[int] = []
    max_sim = np.full(len(s), -np.inf)
    for _ in range(min(k, len(s))):
        value = lam * s - (1 - lam) * np.where(np.isfinite(max_sim), max_sim, 0.0) * 3
        value[chosen] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        max_sim = np.maximum(max_sim, vectors @ vectors[best])
    return chosen


class ThompsonExplorer:
    """Beta-Bernoulli Thompson sampling over items, learning from clicks and carts.

    Args:
        prior: (alpha, beta) of an untried item.
        seed: random seed.
    """

    def __init__(self, prior: tuple[float, float] = (1.0, 1.0), seed: int = 0) -> None:
        self.prior = prior
        self.shown: dict[str, float] = defaultdict(float)
        self.rewards: dict[str, float] = defaultdict(float)
        self.rng = np.random.default_rng(seed)

    def sample(self, skus: Sequence[str]) -> np.ndarray:
        a = np.array([self.prior[0] + self.rewards[s] for s in skus])
        b = np.array([self.prior[1] + self.shown[s] - self.rewards[s] for s in skus])
        return self.rng.beta(a, np.maximum(b, 1e-3))

    def mean(self, skus: Sequence[str]) -> np.ndarray:
        a = np.array([self.prior[0] + self.rewards[s] for s in skus])
        b = np.array([self.prior[1] + self.shown[s] - self.rewards[s] for s in skus])
        return a / (a + b)

    def update(self, sku: str, reward: float, shown: bool = True) -> None:
        """Record an impression (``shown``) and its reward in [0, 1]."""
        if shown:
            self.shown[sku] += 1
        self.rewards[sku] += min(max(reward, 0.0), 1.0)


@dataclass(frozen=True)
class Recommendation:
    product: ProductDoc
    score: float
    reason: str  # "relevance", "profile", "popular" or "explore"


@dataclass(frozen=True)
class RecommendConfig:
    candidates: int = field(default=200, metadata={"help": "Candidates pulled per source."})
    mmr_lambda: float = field(default=0.75, metadata={"help": "1 = pure score, 0 = pure diversity."})
    explore_slots: int = field(default=1, metadata={"help": "Slots of k given to exploration."})

    def __post_init__(self) -> None:
        if not 0 <= self.mmr_lambda <= 1 or self.candidates < 1 or self.explore_slots < 0:
            raise ValueError("invalid recommend config")


class Recommender:
    """``recommend(query|None, profile, k, filters)`` over an index and learned signals."""

    def __init__(self, index, tables: SignalTables, weights: RankWeights | None = None,  # type: ignore[no-untyped-def]
                 explorer: ThompsonExplorer | None = None, config: RecommendConfig | None = None) -> None:
        self.index = index
        self.tables = tables
        self.weights = weights or RankWeights()
        self.explorer = explorer
        self.config = config or RecommendConfig()

    def _candidates(self, query: np.ndarray | None, profile: ShopperProfile, filters: Filters | None
                    ) -> dict[str, float]:
        pool: dict[str, float] = {}
        n = self.config.candidates
        if query is not None:
            for h in self.index.search(query, n, filters):
                pool[h.product.sku] = h.score
        if profile.vector is not None:
            for h in self.index.search(profile.vector, n, filters):
                pool.setdefault(h.product.sku, float(query @ self.tables.vectors[self.tables.position[h.product.sku]])
                                if query is not None and h.product.sku in self.tables.position else 0.0)
        if not pool or query is None:
            top = np.argsort(-self.tables.popularity)[: n * 4]
            mask_ok = self.index.mask(filters) if filters is not None and not filters.unconstrained else None
            for i in top:
                sku = self.tables.skus[i]
                slot = self.index.slot_of.get(sku)
                if slot is None or (mask_ok is not None and not mask_ok[slot]):
                    continue
                pool.setdefault(sku, 0.0)
                if len(pool) >= n * 2:
                    break
        return {s: v for s, v in pool.items() if s in self.tables.position}

    def recommend(self, query: np.ndarray | None, profile: ShopperProfile, k: int,
                  filters: Filters | None = None, history: Sequence[int] = ()) -> list[Recommendation]:
        """Top-``k`` products for this shopper (and query, if any); each says why it was shown."""
        pool = self._candidates(query, profile, filters)
        if not pool:
            return []
        skus = list(pool)
        cand = np.array([self.tables.position[s] for s in skus])
        feats = features(profile, self.tables, cand, history, np.array([pool[s] for s in skus]))
        if query is None:
            feats["relevance"] = np.zeros(len(cand))
        scores = blend(feats, self.weights)
        slots = max(0, k - (self.config.explore_slots if self.explorer else 0))
        order = mmr(scores, self.tables.vectors[cand], slots, self.config.mmr_lambda)
        contrib = {name: self.weights.as_dict()[name] * _standardise(np.asarray(v, dtype=float))
                   for name, v in feats.items()}
        out = [Recommendation(self.tables.products[cand[i]], float(scores[i]), self._reason(contrib, i))
               for i in order]
        if self.explorer and len(out) < k:
            rest = [i for i in np.argsort(-scores)[: max(20, 4 * k)] if i not in set(order)]
            if rest:
                draws = self.explorer.sample([skus[i] for i in rest])
                for j in np.argsort(-draws)[: k - len(out)]:
                    i = rest[int(j)]
                    out.append(Recommendation(self.tables.products[cand[i]], float(scores[i]), "explore"))
        return out

    @staticmethod
    def _reason(contrib: Mapping[str, np.ndarray], i: int) -> str:
        groups = {
            "relevance": contrib["relevance"][i],
            "profile": sum(contrib[n][i] for n in ("profile", "cooccurrence", "sequence", "category", "brand",
                                                   "price", "rebuy")),
            "popular": contrib["popularity"][i],
        }
        return max(groups, key=lambda g: groups[g])


def random_weights(rng: random.Random, base: RankWeights, scale: float = 0.5) -> RankWeights:
    """A perturbation of ``base`` (used by the offline tuner)."""
    values = {k: max(0.0, v + rng.gauss(0, scale)) for k, v in base.as_dict().items()}
    return RankWeights(**values)
