"""Shopper profiles from behaviour: a recency-weighted taste vector and stated preferences.

A purchase counts more than a cart, a cart more than a click, a click more
than a view; returns count against. Weights decay with a half-life, so recent
behaviour matters most. The profile can be stated in words for the prompt.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from retrieval.catalog import ProductDoc

EVENT_WEIGHTS: dict[str, float] = {
    "purchase": 1.0, "cart": 0.5, "click": 0.25, "view": 0.1, "review": 0.0, "return": -1.0, "search": 0.0,
}


@dataclass(frozen=True, slots=True)
class BehaviourEvent:
    """One thing a shopper did with a product (``sku`` is None for searches)."""

    sku: str | None
    type: str
    at: datetime
    value: float | None = None


@dataclass(frozen=True)
class ProfileConfig:
    half_life_days: float = field(default=45.0, metadata={"help": "Event weight halves every N days."})
    weights: Mapping[str, float] = field(default_factory=lambda: dict(EVENT_WEIGHTS),
                                         metadata={"help": "Weight per event type."})
    min_weight: float = field(default=0.15, metadata={"help": "Below this total, the shopper is cold."})

    def __post_init__(self) -> None:
        if self.half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        w = self.weights
        if not w["purchase"] > w["cart"] > w["click"] > w["view"] >= 0 > w["return"]:
            raise ValueError("weights must order purchase > cart > click > view >= 0 > return")


@dataclass(frozen=True)
class ShopperProfile:
    """What the store knows about a shopper's taste."""

    vector: np.ndarray | None
    categories: list[tuple[str, float]]
    brands: list[tuple[str, float]]
    price_band: str | None
    median_price: float | None
    item_weights: dict[str, float]
    n_events: int

    @property
    def cold(self) -> bool:
        return self.vector is None

    def describe(self) -> str:
        """The profile in plain words for the prompt, e.g. 'often buys running shoes, mid-price'."""
        if self.cold:
            return "new shopper, no history yet"
        parts = []
        cats = [c for c, share in self.categories[:2] if share >= 0.15]
        if cats:
            parts.append("often buys " + " and ".join(c.lower() for c in cats))
        if self.price_band:
            parts.append(f"{self.price_band} price range")
        brands = [b for b, share in self.brands[:2] if share >= 0.2 and b]
        if brands:
            parts.append("likes " + " and ".join(brands))
        return ", ".join(parts) or "some browsing history"


def decay(age_days: float, half_life_days: float) -> float:
    return 0.5 ** (max(age_days, 0.0) / half_life_days)


def item_weights(events: Sequence[BehaviourEvent], now: datetime, config: ProfileConfig) -> dict[str, float]:
    """Recency- and type-weighted sum per SKU (may be negative after returns)."""
    out: dict[str, float] = defaultdict(float)
    for e in events:
        if e.sku is None:
            continue
        w = config.weights.get(e.type, 0.0)
        if w:
            out[e.sku] += w * decay((now - e.at).total_seconds() / 86400, config.half_life_days)
    return dict(out)


def _shares(weights: Mapping[str, float]) -> list[tuple[str, float]]:
    total = sum(weights.values())
    if total <= 0:
        return []
    return sorted(((k, round(v / total, 3)) for k, v in weights.items()), key=lambda kv: -kv[1])


def price_band(price: float, cuts: tuple[float, float]) -> str:
    return "budget" if price < cuts[0] else "premium" if price > cuts[1] else "mid"


def build_profile(
    events: Sequence[BehaviourEvent],
    products: Mapping[str, ProductDoc],
    vector_of: Callable[[str], np.ndarray | None],
    now: datetime,
    config: ProfileConfig | None = None,
    price_cuts: Mapping[str, tuple[float, float]] | None = None,
) -> ShopperProfile:
    """Build a shopper's profile.

    Args:
        events: the shopper's behaviour, any order.
        products: catalog by SKU.
        vector_of: the embedding of a SKU (None if unknown).
        now: the reference time for recency.
        config: weights and half-life.
        price_cuts: per category (low, high) price cut-offs for the band; by default
            the shopper's prices are not banded.

    Returns:
        The profile; ``cold`` when there is too little positive behaviour.
    """
    config = config or ProfileConfig()
    weights = item_weights(events, now, config)
    positive = {s: w for s, w in weights.items() if w > 0 and s in products}
    if sum(positive.values()) < config.min_weight:
        return ShopperProfile(None, [], [], None, None, weights, len(events))
    acc: np.ndarray | None = None
    cats: dict[str, float] = defaultdict(float)
    brands: dict[str, float] = defaultdict(float)
    bands: dict[str, float] = defaultdict(float)
    prices: list[tuple[float, float]] = []
    for sku, w in weights.items():
        vec = vector_of(sku)
        if vec is not None:
            acc = w * vec if acc is None else acc + w * vec
        doc = products.get(sku)
        if doc is None or w <= 0:
            continue
        cats[doc.category] += w
        brands[doc.brand] += w
        prices.append((doc.price, w))
        if price_cuts and doc.category in price_cuts:
            bands[price_band(doc.price, price_cuts[doc.category])] += w
    vector = None
    if acc is not None and float(np.linalg.norm(acc)) > 1e-9:
        vector = (acc / np.linalg.norm(acc)).astype(np.float32)
    prices.sort()
    half, run, median = sum(w for _, w in prices) / 2, 0.0, None
    for p, w in prices:
        run += w
        if run >= half:
            median = p
            break
    band = max(bands, key=bands.__getitem__) if bands else None
    return ShopperProfile(vector, _shares(cats), _shares(brands), band, median, weights, len(events))


def category_price_cuts(products: Sequence[ProductDoc]) -> dict[str, tuple[float, float]]:
    """Per-category terciles of price, for naming a shopper's price band."""
    by_cat: dict[str, list[float]] = defaultdict(list)
    for p in products:
        by_cat[p.category].append(p.price)
    return {c: (float(np.quantile(v, 1 / 3)), float(np.quantile(v, 2 / 3))) for c, v in by_cat.items()}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b))) + 1e-12))
