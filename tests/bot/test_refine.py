"""A refinement searches the need with the message's colour, budget or stock; a new product is a new search."""

from __future__ import annotations

import pytest

from bot.turn.acts import ActGuess
from bot.turn.refine import colour_first, refinement
from retrieval.catalog import ProductDoc
from retrieval.search import ProductSearch


@pytest.fixture
def search(index, encoder) -> ProductSearch:  # type: ignore[no-untyped-def]
    return ProductSearch(index, encoder)


def test_a_colour_keeps_the_kind_of_the_need(search: ProductSearch) -> None:
    need = "waterproof hiking boots under $120"
    wants = refinement("got those in navy?", need, search)
    assert wants is not None and wants.filters.max_price == 120
    hits = search.search(wants.text, k=5, filters=wants.filters).hits
    products = [hits[i].product for i in colour_first("got those in navy?", [h.product for h in hits])]
    assert "navy" in products[0].title.lower() and "Boot" in products[0].title
    assert all(p.price <= 120 for p in products)


def test_a_new_budget_replaces_the_needs_and_stock_adds_to_it(search: ProductSearch) -> None:
    need = "running shoes pls, nothing over $100"
    lower = refinement("budget is $60 now", need, search)
    stock = refinement("in stock ones only pls", need, search)
    assert lower is not None and lower.filters.max_price == 60 and not lower.filters.in_stock
    assert stock is not None and stock.filters.max_price == 100 and stock.filters.in_stock


@pytest.mark.parametrize("text", ["what about tents", "show me kettles under $40", "tell me more about the first one"])
def test_a_product_of_its_own_or_nothing_to_refine_is_not_a_refinement(search: ProductSearch, text: str) -> None:
    assert refinement(text, "running shoes under $100", search) is None
    assert refinement("got those in navy?", None, search) is None


def test_the_act_classifier_may_call_a_plain_message_a_refinement(search: ProductSearch) -> None:
    assert refinement("more like these", "yoga mats", search) is None
    assert refinement("more like these", "yoga mats", search, ActGuess("refine", 0.8)) is not None
    assert refinement("more like these", "yoga mats", search, ActGuess("refine", 0.3)) is None


def test_colour_first_is_stable() -> None:
    def p(sku: str, title: str) -> ProductDoc:
        return ProductDoc(sku=sku, title=title, category="c", price=1.0)

    products = [p("a", "Mug (red)"), p("b", "Mug (navy)"), p("c", "Cup (white)"), p("d", "Cup (navy)")]
    assert colour_first("in navy pls", products) == [1, 3, 0, 2]
    assert colour_first("any others?", products) == [0, 1, 2, 3]
