from __future__ import annotations

import pytest

from retrieval.embed import Encoder
from retrieval.index import ProductIndex
from retrieval.query import Filters
from retrieval.search import ProductSearch


@pytest.fixture(scope="module")
def searches(saved_index, encoder: Encoder):  # type: ignore[no-untyped-def]
    index = ProductIndex.load(saved_index)
    return ProductSearch(index, encoder), ProductSearch(index, encoder, lexical=False)


def test_exact_sku_is_found_even_when_the_embedding_misses_it(searches) -> None:  # type: ignore[no-untyped-def]
    hybrid, dense = searches
    misses = 0
    skus = [d.sku for d in hybrid.index.docs if d is not None][::97]
    for sku in skus:
        assert hybrid.search(f"do you still sell {sku}?", k=3).hits[0].product.sku == sku
        misses += sku not in {h.product.sku for h in dense.search(f"do you still sell {sku}?", k=3).hits}
    assert misses >= len(skus) // 2  # the embedding alone misses most of them


def test_brand_and_meaning_both_count(searches) -> None:  # type: ignore[no-untyped-def]
    hybrid, _ = searches
    brand = next(d.brand for d in hybrid.index.docs if d is not None and d.category == "Laptop & Desk Accessories")
    hits = hybrid.search(f"{brand} keyboard", k=5).hits
    assert sum(h.product.brand == brand for h in hits) >= 3
    assert hybrid.search("something to keep my tea hot", k=5).hits


def test_filters_hold_for_lexical_hits_too(searches) -> None:  # type: ignore[no-untyped-def]
    hybrid, _ = searches
    cheap = next(d for d in hybrid.index.docs if d is not None and d.price < 30)
    pricey = next(d for d in hybrid.index.docs if d is not None and d.price > 200)
    hits = hybrid.search(f"{pricey.sku} or {cheap.sku}", k=5, filters=Filters(max_price=50)).hits
    assert cheap.sku in {h.product.sku for h in hits}
    assert all(h.product.price <= 50 for h in hits)


def test_cheapest_orders_the_relevant_products_by_price(searches) -> None:  # type: ignore[no-untyped-def]
    hybrid, dense = searches
    for search in (hybrid, dense):
        plain = search.search("a warm winter jacket", k=5).hits
        cheap = search.search("the cheapest warm winter jacket", k=5)
        prices = [h.product.price for h in cheap.hits]
        assert cheap.filters.cheapest and prices == sorted(prices)
        assert prices[0] <= min(h.product.price for h in plain)
        assert {h.product.category for h in cheap.hits} & {h.product.category for h in plain}


def test_a_cheapest_follow_up_keeps_the_budget_said_before(searches) -> None:  # type: ignore[no-untyped-def]
    hybrid, _ = searches
    found = hybrid.search("which is the cheapest?", context=["a winter jacket under $120"], k=5)
    assert found.filters.max_price == 120 and found.filters.cheapest
    assert all(h.product.price <= 120 for h in found.hits)
    assert [h.product.price for h in found.hits] == sorted(h.product.price for h in found.hits)


def test_a_refinement_keeps_the_budget_said_before_and_a_new_budget_replaces_it(searches) -> None:  # type: ignore[no-untyped-def]
    hybrid, _ = searches
    stock = hybrid.search("in stock ones only pls", context=["a winter jacket under $120"], k=5)
    assert stock.filters.max_price == 120 and stock.filters.in_stock
    assert all(h.product.price <= 120 and h.product.in_stock for h in stock.hits)
    lower = hybrid.search("need it under $60 actually", context=["a winter jacket under $120"], k=5)
    assert lower.filters.max_price == 60
    assert all(h.product.price <= 60 for h in lower.hits)
