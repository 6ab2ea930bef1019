from __future__ import annotations

import pytest

from retrieval.query import AROUND_MARGIN, Filters, parse_filters

PRICE_CASES: list[tuple[str, float | None, float | None]] = [
    # earlier cases
    ("waterproof running shoes under $100", None, 100.0),
    ("headphones below 50 dollars", None, 50.0),
    ("a tent between $80 and $200", 80.0, 200.0),
    ("kettle $20-$40", 20.0, 40.0),
    ("jackets over $150", 150.0, None),
    ("show me yoga mats", None, None),
    ("less than 19.99 please", None, 19.99),
    # maxima
    ("I don't want to spend more than $60", None, 60.0),
    ("budget is $52 max", None, 52.0),
    ("no more than $50", None, 50.0),
    ("not more than 50", None, 50.0),
    ("do not want to pay over 40", None, 40.0),
    ("budget is $50", None, 50.0),
    ("budget is $50 max", None, 50.0),
    ("budget of 50", None, 50.0),
    ("my budget's 50 dollars", None, 50.0),
    ("my budget’s 50 dollars", None, 50.0),
    ("budget: $75", None, 75.0),
    ("a $50 budget", None, 50.0),
    ("$50 or less", None, 50.0),
    ("50 or under", None, 50.0),
    ("50 bucks tops", None, 50.0),
    ("$50 max", None, 50.0),
    ("50 maximum", None, 50.0),
    ("up to £40", None, 40.0),
    ("below 30 euros", None, 30.0),
    ("under 25€", None, 25.0),
    ("less than €20", None, 20.0),
    ("at most 30", None, 30.0),
    ("cheaper than 40", None, 40.0),
    ("within $60", None, 60.0),
    ("not over 45", None, 45.0),
    ("<= 30", None, 30.0),
    ("≤ 30", None, 30.0),
    ("under a hundred", None, 100.0),
    ("under twenty five dollars", None, 25.0),
    ("two hundred bucks tops", None, 200.0),
    ("GBP 40 max", None, 40.0),
    ("under 50 usd", None, 50.0),
    ("I'll pay 40 bucks max", None, 40.0),
    ("I want to spend $60", None, 60.0),
    ("under 2k", None, 2000.0),
    # soft ranges: 0.8x .. 1.2x
    ("around $30", 24.0, 36.0),
    ("about 30", 24.0, 36.0),
    ("roughly £30", 24.0, 36.0),
    ("~30", 24.0, 36.0),
    ("approximately 30", 24.0, 36.0),
    ("approx. 30", 24.0, 36.0),
    ("30ish", 24.0, 36.0),
    ("$30 or so", 24.0, 36.0),
    ("£40 give or take", 32.0, 48.0),
    ("ABOUT 30 EUR", 24.0, 36.0),
    # ranges
    ("between $20 and $40", 20.0, 40.0),
    ("between 40 and 20", 20.0, 40.0),
    ("$20-$40", 20.0, 40.0),
    ("$20 - $40", 20.0, 40.0),
    ("20 to 40 dollars", 20.0, 40.0),
    ("from 20 to 40", 20.0, 40.0),
    ("£10–£15", 10.0, 15.0),
    ("1,000-2,000 usd", 1000.0, 2000.0),
    ("between £1,200 and £1,500", 1200.0, 1500.0),
    ("budget is 50 to 80", 50.0, 80.0),
    # minima
    ("over $150", 150.0, None),
    ("more than 100", 100.0, None),
    ("at least 80", 80.0, None),
    ("above 50", 50.0, None),
    ("$100 or more", 100.0, None),
    ("100+", 100.0, None),
    ("$50 and up", 50.0, None),
    ("starting at 50", 50.0, None),
    ("$50 min", 50.0, None),
    (">= 80", 80.0, None),
    # negation flips the bound
    ("not under $50", 50.0, None),
    ("no less than 50", 50.0, None),
    ("nothing below $25", 25.0, None),
    ("don't want anything over 30", None, 30.0),
    ("nothing above 25", None, 25.0),
    ("I'd rather not spend over 80", None, 80.0),
    ("i cant afford more than 60", None, 60.0),
    ("dont go above 50", None, 50.0),
    ("over $100 is too much", None, 100.0),
    ("anything under 20 is too cheap", 20.0, None),
    # unclear negation gives no bound, never the opposite one
    ("not sure maybe over 100", None, None),
    ("over 100 isn't an option", None, None),
    ("not between 20 and 40", None, None),
    # numbers that are not prices
    ("size 10 shoes", None, None),
    ("2 pairs", None, None),
    ("order 10023", None, None),
    ("in 3 days", None, None),
    ("iphone 15", None, None),
    ("iphone 15 plus", None, None),
    ("iphone 15 pro max 256", None, None),
    ("size 10+ boots", None, None),
    ("ages 3+ toys", None, None),
    ("under 2 kg", None, None),
    ("at least 2 pairs", None, None),
    ("in 3 to 5 days", None, None),
    ("between 3 and 5 days", None, None),
    ("up to 4 people", None, None),
    ("100 or more people", None, None),
    ("50 min", None, None),
    ("under 50%", None, None),
    ("budget shoes size 10", None, None),
    ("under 1.200", None, None),
    # sentences, case and number formats
    ("hi! looking for a rain jacket, I don't want to spend more than $60 though", None, 60.0),
    ("I DON'T WANT TO SPEND MORE THAN $60", None, 60.0),
    ("Under $50 Please", None, 50.0),
    ("BUDGET IS $52 MAX", None, 52.0),
    ("2 tops under $20", None, 20.0),
    ("size 10 under $50", None, 50.0),
    ("airpods pro under 200", None, 200.0),
    ("over-ear headphones under $100", None, 100.0),
    ("under $1,200", None, 1200.0),
    ("under 19,99 €", None, 19.99),
    ("no more than $19.99", None, 19.99),
    # several bounds
    ("under 100, ideally under 80", None, 80.0),
    ("around 30 but under 32", 24.0, 32.0),
    ("around 40, at least 45", 45.0, 48.0),
    ("over $150 but under $100", None, 100.0),
]


@pytest.mark.parametrize(("text", "lo", "hi"), PRICE_CASES)
def test_price_bounds_are_read_from_text(text: str, lo: float | None, hi: float | None) -> None:
    f = parse_filters(text)
    assert (f.min_price, f.max_price) == (lo, hi)


def test_there_are_many_cases() -> None:
    assert len(PRICE_CASES) >= 70
    assert len({text for text, _, _ in PRICE_CASES}) == len(PRICE_CASES)


def test_soft_range_uses_the_margin() -> None:
    f = parse_filters("around $50")
    assert (f.min_price, f.max_price) == (50 * (1 - AROUND_MARGIN), 50 * (1 + AROUND_MARGIN))


@pytest.mark.parametrize(
    ("text", "cheapest"),
    [
        ("the cheapest tent", True),
        ("lowest price", True),
        ("least expensive one", True),
        ("what's the lowest priced kettle", True),
        ("price low to high please", True),
        ("I don't want the cheapest", False),
        ("it doesn't have to be the cheapest", False),
        ("something cheaper than 40", False),
        ("a rain jacket", False),
    ],
)
def test_cheapest_wish(text: str, cheapest: bool) -> None:
    assert parse_filters(text).cheapest is cheapest


def test_cheapest_combines_with_bounds_and_is_described() -> None:
    f = parse_filters("cheapest one under 50")
    assert f.cheapest and f.max_price == 50 and not f.empty
    assert f.describe() == "price at most 50, cheapest first"
    assert parse_filters("show me yoga mats").empty


def test_in_stock_wish_and_description() -> None:
    f = parse_filters("boots under $120 that are in stock")
    assert f.in_stock and f.max_price == 120
    assert f.describe() == "price at most 120, in stock"


def test_contradictory_bounds_are_rejected() -> None:
    with pytest.raises(ValueError, match="above max_price"):
        Filters(min_price=10, max_price=5)
