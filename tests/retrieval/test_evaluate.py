from __future__ import annotations

from datetime import timedelta

import pytest

from retrieval.demo_store import EPOCH, DemoStore
from retrieval.embed import Encoder
from retrieval.evaluate import (
    Dataset,
    LoggedEvent,
    baseline_scorers,
    evaluate,
    make_split,
    ndcg_at_k,
    personalized_scorer,
    recall_at_k,
)
from retrieval.recommend import RankWeights


def test_metrics() -> None:
    assert ndcg_at_k([1, 2, 3], {1}) == 1.0
    assert ndcg_at_k([5, 1], {1}) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert ndcg_at_k([5, 6], {1}) == 0.0
    assert recall_at_k([1, 2], {1, 3}) == 0.5


def test_personalized_beats_popularity_on_held_out_purchases(demo_store: DemoStore, encoder: Encoder) -> None:
    events = [LoggedEvent(e.shopper, e.sku, e.type, e.at, e.session) for e in demo_store.events if e.sku]
    vectors = encoder.encode_documents([p.embedding_text() for p in demo_store.products])
    split = make_split(Dataset("demo", demo_store.products, events), vectors, EPOCH + timedelta(days=170),
                       timedelta(days=70), min_test_users=10)
    scores = {k: evaluate(split, s)["ndcg"] for k, s in baseline_scorers(split).items()}
    ours = evaluate(split, personalized_scorer(split, RankWeights(relevance=0.0)))["ndcg"]
    assert ours > scores["popularity"] and ours > scores["content"]


def test_too_few_test_users_is_an_error(demo_store: DemoStore) -> None:
    import numpy as np

    with pytest.raises(ValueError, match="held-out purchases"):
        make_split(Dataset("demo", demo_store.products, []), np.zeros((len(demo_store.products), 4), np.float32),
                   EPOCH, timedelta(days=1))
