from __future__ import annotations

from collections import Counter

from retrieval.demo_store import generate


def test_default_store_is_big_and_varied() -> None:
    store = generate(seed=11)
    assert len(store.products) >= 2000
    assert len({p.category for p in store.products}) >= 12
    assert len(store.shoppers) >= 500
    assert {e.type for e in store.events} >= {"search", "view", "click", "cart", "purchase", "return", "review"}
    assert {o.status for o in store.orders} >= {"processing", "shipped", "delivered", "cancelled", "returned"}
    assert len({p.sku for p in store.products}) == len(store.products)
    assert all(p.title and p.description and p.brand and p.price > 0 for p in store.products)
    assert all(1 <= r.rating <= 5 for r in store.reviews)


def test_same_seed_same_store_other_seed_other_store() -> None:
    a, b, c = generate(seed=5, n_products=320, n_shoppers=40), generate(seed=5, n_products=320, n_shoppers=40), generate(seed=6, n_products=320, n_shoppers=40)
    assert a.products == b.products and a.events == b.events and a.reviews == b.reviews
    assert a.products != c.products


def test_purchases_follow_hidden_tastes() -> None:
    store = generate(seed=2, n_products=960, n_shoppers=200)
    category = {p.sku: p.category for p in store.products}
    in_taste = total = 0
    for shopper in store.shoppers:
        top = sorted(shopper.taste.category_weights, key=shopper.taste.category_weights.__getitem__)[-3:]
        for e in store.events:
            if e.shopper == shopper.external_id and e.type == "purchase":
                total += 1
                in_taste += category[e.sku] in top  # type: ignore[index]
    assert total > 100
    assert in_taste / total > 0.8  # 3 of 16 categories would be 0.19 by chance


def test_review_tone_matches_stars() -> None:
    store = generate(seed=4)
    negative = ("disappointed", "terrible", "waste", "not great", "flimsy", "meh", "cheap")
    positive = ("love", "excellent", "five stars", "really good", "solid", "happy")
    by_star = Counter()
    for r in store.reviews:
        t = r.text.lower()
        if r.rating <= 2:
            by_star["low_ok"] += any(w in t for w in negative)
            by_star["low"] += 1
        if r.rating >= 4:
            by_star["high_ok"] += any(w in t for w in positive)
            by_star["high"] += 1
    assert by_star["low"] > 10 and by_star["low_ok"] == by_star["low"]
    assert by_star["high"] > 10 and by_star["high_ok"] == by_star["high"]
