from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest

from retrieval.demo_store import EPOCH, HISTORY_DAYS, generate
from retrieval.evaluate import Dataset, LoggedEvent, make_split, profile_of
from retrieval.segments import SegmentModel


def test_segments_group_shoppers_by_their_hidden_taste(encoder) -> None:  # type: ignore[no-untyped-def]
    store = generate(seed=9, n_products=480, n_shoppers=150)
    events = [LoggedEvent(e.shopper, e.sku, e.type, e.at, e.session) for e in store.events if e.sku]
    vectors = encoder.encode_documents([p.title for p in store.products])
    split = make_split(Dataset("demo", store.products, events), vectors,
                       EPOCH + timedelta(days=HISTORY_DAYS + 1), timedelta(days=1), min_test_users=0)
    profiles = {u: profile_of(split, u) for u in split.histories}
    model = SegmentModel(sorted({p.category for p in store.products}), k=6)
    labels = model.fit(profiles)
    assert len(model.segments) == 6 and sum(s.size for s in model.segments) == len(labels)
    favourite = {s.external_id: max(s.taste.category_weights, key=s.taste.category_weights.__getitem__)
                 for s in store.shoppers}
    def purity(assignment: dict[str, int]) -> float:
        """Share of shoppers whose hidden favourite is their segment's most common one."""
        hits = 0
        for seg in set(assignment.values()):
            members = [u for u, label in assignment.items() if label == seg]
            hits += Counter(favourite[u] for u in members).most_common(1)[0][1]
        return hits / len(assignment)

    rng = random.Random(0)
    shuffled = dict(zip(labels, rng.sample(list(labels.values()), len(labels)), strict=True))
    assert purity(labels) >= 2 * purity(shuffled), (purity(labels), purity(shuffled))
    for seg in model.segments:
        assert seg.name and seg.categories
    some = next(iter(labels))
    assigned = model.assign(profiles[some])
    assert assigned is not None and assigned.id == labels[some]


def test_too_few_shoppers_is_an_error() -> None:
    with pytest.raises(ValueError, match="too few"):
        SegmentModel(["a"], k=3).fit({})
