from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from retrieval.demo_store import EPOCH, DemoStore
from retrieval.embed import Encoder
from retrieval.evaluate import Dataset, LoggedEvent, make_split, profile_of
from retrieval.index import ProductIndex
from retrieval.profile import BehaviourEvent, ProfileConfig, build_profile
from retrieval.query import Filters
from retrieval.recommend import Recommender, ThompsonExplorer, mmr


@pytest.fixture(scope="module")
def split(demo_store: DemoStore, encoder: Encoder):  # type: ignore[no-untyped-def]
    events = [LoggedEvent(e.shopper, e.sku, e.type, e.at, e.session) for e in demo_store.events if e.sku]
    vectors = encoder.encode_documents([p.embedding_text() for p in demo_store.products])
    return make_split(Dataset("demo", demo_store.products, events), vectors, EPOCH + timedelta(days=240),
                      timedelta(days=1), min_test_users=0)


def test_event_types_are_weighted_and_returns_count_against(demo_store: DemoStore) -> None:
    products = {p.sku: p for p in demo_store.products}
    a, b, c = demo_store.products[:3]
    now = EPOCH + timedelta(days=10)
    events = [BehaviourEvent(a.sku, "purchase", now), BehaviourEvent(b.sku, "view", now),
              BehaviourEvent(c.sku, "purchase", now - timedelta(days=90)), BehaviourEvent(c.sku, "return", now)]
    p = build_profile(events, products, lambda s: None, now, ProfileConfig(half_life_days=30))
    assert p.item_weights[a.sku] == pytest.approx(1.0)
    assert p.item_weights[b.sku] == pytest.approx(0.1)
    assert p.item_weights[c.sku] < 0  # an old purchase that came back


def test_a_purchase_outweighs_an_older_one() -> None:
    with pytest.raises(ValueError, match="weights must order"):
        ProfileConfig(weights={"purchase": 1, "cart": 2, "click": 0.1, "view": 0.0, "return": -1})


def test_profile_in_words_matches_hidden_taste(split, demo_store: DemoStore) -> None:  # type: ignore[no-untyped-def]
    hits = 0
    shoppers = [s for s in demo_store.shoppers if s.external_id in split.histories][:40]
    for s in shoppers:
        profile = profile_of(split, s.external_id)
        favourite = max(s.taste.category_weights, key=s.taste.category_weights.__getitem__)
        hits += favourite.lower() in profile.describe()
    assert hits / len(shoppers) >= 0.8


def test_cold_start_falls_back_to_popular_products(split, index: ProductIndex) -> None:  # type: ignore[no-untyped-def]
    cold = build_profile([], {}, lambda s: None, EPOCH)
    assert cold.cold and cold.describe() == "new shopper, no history yet"
    recs = Recommender(index, split.tables).recommend(None, cold, 5)
    assert len(recs) == 5 and {r.reason for r in recs} == {"popular"}


def test_recommendations_follow_the_profile_and_say_why(split, index: ProductIndex, encoder: Encoder) -> None:  # type: ignore[no-untyped-def]
    user = max(split.histories, key=lambda u: len(split.histories[u]))
    profile = profile_of(split, user)
    top_category = profile.categories[0][0]
    rec = Recommender(index, split.tables)
    recs = rec.recommend(None, profile, 8)
    assert len(recs) == 8 and all(r.reason in {"profile", "popular", "relevance"} for r in recs)
    assert sum(r.product.category == top_category for r in recs) >= 4
    with_query = rec.recommend(encoder.encode_query("espresso machine"), profile, 5, Filters(max_price=300))
    assert with_query and all(r.product.price <= 300 for r in with_query)
    assert any(r.reason == "relevance" for r in with_query)
    on_topic = {"Kitchen Appliances", "Coffee & Tea"}
    assert sum(r.product.category in on_topic for r in with_query) >= 4


def test_mmr_trades_score_for_diversity() -> None:
    v = np.array([[1, 0], [0.999, 0.04], [0, 1]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    scores = np.array([1.0, 0.99, 0.8])
    assert mmr(scores, v, 2, lam=1.0) == [0, 1]
    assert mmr(scores, v, 2, lam=0.5) == [0, 2]


def simulate(policy: str, rounds: int = 10_000, seed: int = 1) -> int:
    """Shoppers of four hidden tastes click items; both policies start from the same cold prior.

    The prior is the store's base click rate (~3%) for every untried item, so pure
    exploitation keeps showing whatever first earned clicks.
    """
    rng = np.random.default_rng(seed)
    n, tastes = 60, 4
    appeal = rng.beta(2, 18, n)  # how clickable each item is
    fit = rng.uniform(0.4, 1.6, (tastes, n))  # how well it suits each hidden taste
    skus = [f"I{i}" for i in range(n)]
    explorer = ThompsonExplorer(prior=(1.0, 30.0), seed=seed)
    clicks = 0
    for _ in range(rounds):
        taste = rng.integers(tastes)
        values = explorer.sample(skus) if policy == "explore" else explorer.mean(skus) + rng.uniform(0, 1e-9, n)
        i = int(np.argmax(values))
        reward = float(rng.random() < min(1.0, appeal[i] * fit[taste, i]))
        explorer.update(skus[i], reward)
        clicks += int(reward)
    return clicks


def test_exploration_beats_pure_exploitation() -> None:
    explore = [simulate("explore", seed=s) for s in range(3)]
    exploit = [simulate("exploit", seed=s) for s in range(3)]
    assert all(e > x for e, x in zip(explore, exploit, strict=True)), (explore, exploit)
    assert sum(explore) > 1.15 * sum(exploit), (explore, exploit)


def test_explore_slot_is_labelled(split, index: ProductIndex) -> None:  # type: ignore[no-untyped-def]
    user = next(iter(split.histories))
    recs = Recommender(index, split.tables, explorer=ThompsonExplorer(seed=3)).recommend(None, profile_of(split, user), 5)
    assert len(recs) == 5 and recs[-1].reason == "explore"
    assert len({r.product.sku for r in recs}) == 5
