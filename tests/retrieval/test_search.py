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
