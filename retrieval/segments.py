"""Shopper segments: k-means over profiles, each segment described by its defining traits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.profile import ShopperProfile


@dataclass(frozen=True)
class Segment:
    id: int
    size: int
    categories: list[tuple[str, float]]
    price_band: str | None
    brands: list[tuple[str, float]]

    @property
    def name(self) -> str:
        cats = " & ".join(c for c, share in self.categories[:2] if share >= 0.15) or "mixed interests"
        return f"{cats}, {self.price_band} price" if self.price_band else cats


def profile_features(profile: ShopperProfile, categories: Sequence[str]) -> np.ndarray:
    """Taste vector and category shares side by side (each L2-normalised)."""
    shares = dict(profile.categories)
    cats = np.array([shares.get(c, 0.0) for c in categories], dtype=np.float32)
    cats /= max(float(np.linalg.norm(cats)), 1e-9)
    vec = profile.vector if profile.vector is not None else np.zeros(0, dtype=np.float32)
    return np.concatenate([0.7 * vec, cats]).astype(np.float32)


class SegmentModel:
    """Fit with :meth:`fit`; :meth:`assign` gives a profile's segment."""

    def __init__(self, categories: Sequence[str], k: int = 6, seed: int = 0) -> None:
        if k < 2:
            raise ValueError("k must be at least 2")
        self.categories = list(categories)
        self.k = k
        self.seed = seed
        self.centroids = np.zeros((0, 0), dtype=np.float32)
        self.segments: list[Segment] = []

    def fit(self, profiles: Mapping[str, ShopperProfile]) -> dict[str, int]:
        """Cluster the warm profiles; returns each shopper's segment id."""
        from sklearn.cluster import KMeans

        warm = {u: p for u, p in profiles.items() if not p.cold}
        if len(warm) < self.k:
            raise ValueError(f"{len(warm)} shoppers with history is too few for {self.k} segments")
        users = sorted(warm)
        x = np.stack([profile_features(warm[u], self.categories) for u in users])
        km = KMeans(n_clusters=self.k, n_init=4, random_state=self.seed).fit(x)
        self.centroids = km.cluster_centers_.astype(np.float32)
        labels = {u: int(label) for u, label in zip(users, km.labels_, strict=True)}
        self.segments = []
        for s in range(self.k):
            members = [warm[u] for u in users if labels[u] == s]
            cats: Counter[str] = Counter()
            brands: Counter[str] = Counter()
            for p in members:
                cats.update(dict(p.categories))
                brands.update(dict(p.brands))
            bands = Counter(p.price_band for p in members if p.price_band)
            n = max(len(members), 1)
            self.segments.append(Segment(
                s, len(members), [(c, round(v / n, 3)) for c, v in cats.most_common(3)],
                bands.most_common(1)[0][0] if bands else None,
                [(b, round(v / n, 3)) for b, v in brands.most_common(3) if b],
            ))
        return labels

    def assign(self, profile: ShopperProfile) -> Segment | None:
        """The nearest segment, or None for a cold shopper or an unfitted model."""
        if profile.cold or not self.segments:
            return None
        d = np.linalg.norm(self.centroids - profile_features(profile, self.categories), axis=1)
        return self.segments[int(np.argmin(d))]
