from __future__ import annotations

import pytest

from retrieval.query import Filters, parse_filters


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [
        ("waterproof running shoes under $100", None, 100.0),
        ("headphones below 50 dollars", None, 50.0),
        ("a tent between $80 and $200", 80.0, 200.0),
        ("kettle $20-$40", 20.0, 40.0),
        ("jackets over $150", 150.0, None),
        ("show me yoga mats", None, None),
        ("less than 19.99 please", None, 19.99),
    ],
)
def test_price_bounds_are_read_from_text(text: str, lo: float | None, hi: float | None) -> None:
    f = parse_filters(text)
    assert (f.min_price, f.max_price) == (lo, hi)


def test_in_stock_wish_and_description() -> None:
    f = parse_filters("boots under $120 that are in stock")
    assert f.in_stock and f.max_price == 120
    assert f.describe() == "price at most 120, in stock"


def test_contradictory_bounds_are_rejected() -> None:
    with pytest.raises(ValueError, match="above max_price"):
        Filters(min_price=10, max_price=5)
