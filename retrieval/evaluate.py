"""Offline evaluation of recommendations on held-out purchases after a time cut-off.

Each dataset is a catalog plus a behaviour log. Everything before the cut-off
trains the signals and builds profiles; each shopper's purchases in the window
after it are the relevant items. Baselines: popularity, item-to-item
co-occurrence, and content similarity without personalization (the mean
embedding of what the shopper touched). The personalized ranker blends the
features of :mod:`retrieval.recommend` with weights tuned on an earlier
validation window, never on the test window.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from retrieval.catalog import ProductDoc
from retrieval.profile import (
    BehaviourEvent,
    ProfileConfig,
    ShopperProfile,
    build_profile,
    category_price_cuts,
)
from retrieval.recommend import (
    POSITIVE,
    RankWeights,
    SignalTables,
    blend,
    features,
    fit_tables,
    random_weights,
)


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    user: str
    sku: str
    type: str
    at: datetime
    basket: str


@dataclass
class Dataset:
    name: str
    products: list[ProductDoc]
    events: list[LoggedEvent]


@dataclass
class Split:
    """Signals fitted before ``cutoff``; relevant items = purchases in (cutoff, cutoff + horizon]."""

    tables: SignalTables
    histories: dict[str, list[LoggedEvent]]
    relevant: dict[str, set[int]]
    cutoff: datetime


def ndcg_at_k(ranked: Sequence[int], relevant: set[int], k: int = 10) -> float:
    dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(ranked[:k]) if i in relevant)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def recall_at_k(ranked: Sequence[int], relevant: set[int], k: int = 10) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def make_split(data: Dataset, vectors: np.ndarray, cutoff: datetime, horizon: timedelta,
               min_test_users: int = 20) -> Split:
    """Fit the signal tables on events before ``cutoff`` and collect the held-out purchases."""
    known = {p.sku for p in data.products}
    before = sorted((e for e in data.events if e.at < cutoff and e.sku in known), key=lambda e: e.at)
    tables = fit_tables(data.products, vectors, [(e.user, e.sku, e.type, e.basket) for e in before])
    histories: dict[str, list[LoggedEvent]] = defaultdict(list)
    for e in before:
        histories[e.user].append(e)
    relevant: dict[str, set[int]] = defaultdict(set)
    for e in data.events:
        if (cutoff <= e.at < cutoff + horizon and e.type == "purchase" and e.sku in known
                and e.user in histories):
            relevant[e.user].add(tables.position[e.sku])
    if len(relevant) < min_test_users:
        raise ValueError(f"{data.name}: only {len(relevant)} shoppers with held-out purchases after {cutoff}")
    return Split(tables, dict(histories), dict(relevant), cutoff)


Scorer = Callable[[str], np.ndarray]


def profile_of(split: Split, user: str, cuts: Mapping[str, tuple[float, float]] | None = None) -> ShopperProfile:
    t = split.tables
    events = [BehaviourEvent(e.sku, e.type, e.at) for e in split.histories[user]]
    return build_profile(events, dict(zip(t.skus, t.products, strict=True)),
                         lambda s: t.vectors[t.position[s]] if s in t.position else None,
                         split.cutoff, ProfileConfig(), cuts)


def baseline_scorers(split: Split) -> dict[str, Scorer]:
    t = split.tables
    pop = np.log1p(t.popularity)

    def popularity(_: str) -> np.ndarray:
        return pop

    def cooccurrence(user: str) -> np.ndarray:
        x = np.zeros(len(t.skus), dtype=np.float32)
        for e in split.histories[user]:
            if e.type in POSITIVE or e.type in ("click", "view"):
                x[t.position[e.sku]] += 1.0
        return np.asarray(t.cooc @ x).ravel() + 1e-6 * pop  # popularity only breaks ties

    def content(user: str) -> np.ndarray:
        touched = sorted({t.position[e.sku] for e in split.histories[user] if e.type != "return"})
        if not touched:
            return pop
        q = t.vectors[touched].mean(axis=0)
        return t.vectors @ q

    return {"popularity": popularity, "cooccurrence": cooccurrence, "content": content}


def personalized_scorer(split: Split, weights: RankWeights) -> Scorer:
    t = split.tables
    everything = np.arange(len(t.skus))
    cuts = category_price_cuts(t.products)

    def score(user: str) -> np.ndarray:
        profile = profile_of(split, user, cuts)
        history = [t.position[e.sku] for e in split.histories[user] if e.type in POSITIVE]
        return blend(features(profile, t, everything, history), weights)

    return score


def evaluate(split: Split, scorer: Scorer, k: int = 10, users: Iterable[str] | None = None) -> dict[str, float]:
    """Mean NDCG@k and recall@k over shoppers with held-out purchases, and catalog coverage."""
    ndcg, recall, shown = [], [], set()
    for user in users if users is not None else split.relevant:
        scores = scorer(user)
        top = np.argpartition(-scores, k)[:k]
        ranked = [int(i) for i in top[np.argsort(-scores[top])]]
        shown.update(ranked)
        ndcg.append(ndcg_at_k(ranked, split.relevant[user], k))
        recall.append(recall_at_k(ranked, split.relevant[user], k))
    return {"ndcg": round(float(np.mean(ndcg)), 4), "recall": round(float(np.mean(recall)), 4),
            "coverage": round(len(shown) / len(split.tables.skus), 4), "users": len(ndcg)}


def tune_weights(split: Split, iterations: int = 40, seed: int = 0, sample_users: int = 400) -> RankWeights:
    """Random local search over blend weights, maximising validation NDCG@10."""
    rng = random.Random(seed)
    users = sorted(split.relevant)
    users = rng.sample(users, min(sample_users, len(users)))
    best = RankWeights(relevance=0.0)
    best_score = evaluate(split, personalized_scorer(split, best), users=users)["ndcg"]
    scale = 0.6
    for _ in range(iterations):
        cand = random_weights(rng, best, scale)
        s = evaluate(split, personalized_scorer(split, cand), users=users)["ndcg"]
        if s > best_score:
            best, best_score = cand, s
        else:
            scale = max(0.1, scale * 0.97)
    return best


# --- datasets ---------------------------------------------------------------------------------


def demo_dataset(seed: int = 7, n_products: int = 2400, n_shoppers: int = 600) -> Dataset:
    from retrieval.demo_store import generate

    store = generate(seed, n_products, n_shoppers)
    events = [LoggedEvent(e.shopper, e.sku, e.type, e.at, e.session) for e in store.events if e.sku]
    return Dataset("demo", store.products, events)


def online_retail_dataset(path: Path) -> Dataset:
    """Purchases (and cancellations as returns) of identified customers in the UCI Online Retail log.

    The catalog comes from :func:`retrieval.importers.import_catalog` (one product per
    StockCode, latest price); events use the same upper-cased StockCodes.
    """
    from retrieval.datasets import read_online_retail_lines
    from retrieval.importers import import_catalog, is_product_code

    products = import_catalog(path, file_format="online-retail").products
    known = {p.sku for p in products}
    events: list[LoggedEvent] = []
    for line in read_online_retail_lines(path)[0]:
        code = line.stock_code.upper()
        if code in known and is_product_code(code):
            events.append(LoggedEvent(line.customer, code, line.kind, line.at, line.invoice))
    return Dataset("online_retail", products, events)
