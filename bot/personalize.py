"""Personalization from the store's SQL behaviour log: shopper profiles and recommendations."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Event, Product, User
from retrieval.index import ProductIndex
from retrieval.profile import BehaviourEvent, ShopperProfile, build_profile, category_price_cuts
from retrieval.query import Filters
from retrieval.recommend import (
    RankWeights,
    Recommendation,
    RecommendConfig,
    Recommender,
    ThompsonExplorer,
    fit_tables,
)
from retrieval.segments import Segment, SegmentModel

REWARDS = {"click": 0.5, "cart": 1.0}
"""What a shopper's reaction to a shown product is worth to the explorer."""

SPECIFIC_QUERY = 0.35
"""Below this best similarity a question names no product ("what would you recommend?")."""


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Personalized:
    profile: ShopperProfile
    recommendations: list[Recommendation]
    segment: Segment | None = None

    def describe(self) -> str:
        """The profile in words, with the segment when there is one."""
        text = self.profile.describe()
        return f"{text}; segment: {self.segment.name}" if self.segment else text


class Personalizer:
    """Learns catalog-wide signals once from the events table; builds profiles per turn."""

    def __init__(self, factory: sessionmaker[Session], index: ProductIndex,
                 weights: RankWeights | None = None, segments: int = 6, explore_slots: int = 1) -> None:
        self.factory = factory
        self.index = index
        docs = [d for d in index.docs if d is not None]
        vectors = index.index.reconstruct_batch(np.array([index.slot_of[d.sku] for d in docs], dtype=np.int64))
        with factory() as s:
            rows = s.execute(
                select(User.external_id, Product.sku, Event.type, Event.session, Event.created_at)
                .join(User, User.id == Event.user_id).join(Product, Product.id == Event.product_id)
                .order_by(Event.created_at)
            ).all()
        self.tables = fit_tables(docs, vectors, [(u, sku, t.value, sess or u) for u, sku, t, sess, _ in rows])
        self.explorer = ThompsonExplorer(prior=(1.0, 20.0))
        for _, sku, t, _, _ in rows:  # the log seeds the bandit: views are impressions
            if t.value == "view":
                self.explorer.update(sku, 0.0)
            elif t.value in REWARDS:
                self.explorer.update(sku, REWARDS[t.value], shown=False)
        self.recommender = Recommender(index, self.tables, weights, self.explorer,
                                       RecommendConfig(explore_slots=explore_slots))
        self.products = {d.sku: d for d in docs}
        self.price_cuts = category_price_cuts(docs)
        self.segments: SegmentModel | None = None
        self.segment_of: dict[str, int] = {}
        by_user: dict[str, list[BehaviourEvent]] = defaultdict(list)
        for u, sku, t, _, at in rows:
            by_user[u].append(BehaviourEvent(sku, t.value, _aware(at)))
        profiles = {u: self._build(events) for u, events in by_user.items()}
        model = SegmentModel(sorted({d.category for d in docs}), k=segments)
        if sum(not p.cold for p in profiles.values()) >= 10 * segments:
            self.segment_of = model.fit(profiles)
            self.segments = model

    def _build(self, events: list[BehaviourEvent], now: datetime | None = None) -> ShopperProfile:
        if now is None:
            now = max((e.at for e in events), default=datetime.now(UTC))
        t = self.tables
        return build_profile(events, self.products,
                             lambda sku: t.vectors[t.position[sku]] if sku in t.position else None,
                             now, price_cuts=self.price_cuts)

    def segment(self, profile: ShopperProfile) -> Segment | None:
        """The shopper's segment (None when cold or when there are too few shoppers to segment)."""
        return self.segments.assign(profile) if self.segments else None

    def profile(self, user_id: int, now: datetime | None = None) -> ShopperProfile:
        """The shopper's profile from their events (cold when they opted out or have none)."""
        with self.factory() as s:
            user = s.get(User, user_id)
            if user is None or not user.consent_personalization:
                return build_profile([], {}, lambda _: None, now or datetime.now(UTC))
            rows = s.execute(
                select(Product.sku, Event.type, Event.created_at)
                .join(Product, Product.id == Event.product_id).where(Event.user_id == user_id)
            ).all()
        return self._build([BehaviourEvent(sku, t.value, _aware(at)) for sku, t, at in rows], now)

    def recommend(self, user_id: int, query: np.ndarray, best_score: float, k: int,
                  filters: Filters | None) -> Personalized:
        """Recommendations for this shopper; a vague question is ranked by the profile alone."""
        profile = self.profile(user_id)
        if profile.cold:  # nothing to personalize: the caller keeps plain search results
            return Personalized(profile, [])
        history = [self.tables.position[s] for s, w in profile.item_weights.items()
                   if w > 0 and s in self.tables.position]
        q = query if best_score >= SPECIFIC_QUERY else None
        recs = self.recommender.recommend(q, profile, k, filters, history)
        return Personalized(profile, recs, self.segment(profile))

    def shown(self, skus: list[str]) -> None:
        """Count an impression for each product shown to a shopper."""
        for sku in skus:
            self.explorer.update(sku, 0.0)

    def feedback(self, sku: str, event: str) -> None:
        """Learn from a click or add-to-cart on a shown product."""
        if event in REWARDS:
            self.explorer.update(sku, REWARDS[event], shown=False)
