"""Two listed products compared by price: the server answers from the catalog, or leaves it to the model."""

from __future__ import annotations

import pytest

from bot.comparison import NOTHING_CHEAPER, cheaper_reply, compared, comparison_reply, shown_first
from bot.mentions import rendered
from retrieval.catalog import ProductDoc


def doc(sku: str, title: str, price: float, stock: int = 5) -> ProductDoc:
    return ProductDoc(sku=sku, title=title, category="Fitness", price=price, currency="GBP", stock=stock)


LISTED = [
    doc("K-1", "Velora Extra Thick Kettlebell (Black)", 60.0),
    doc("K-2", "Ironclad Extra Thick Kettlebell (Black)", 45.5),
    doc("K-3", "Velora Extra Thick Kettlebell (Red)", 60.0),
    doc("K-4", "Ironclad Grip Dumbbell", 45.5, stock=0),
    doc("K-5", "Strider Kettlebell Stand", 19.0),
]


@pytest.mark.parametrize("message", [
    "Velora Extra Thick Kettlebell or Ironclad Extra Thick Kettlebell, which one is cheaper?",
    "compare the velora extra thick kettlebell and the ironclad extra thick kettlebell",
    "what's the difference between the Ironclad Extra-Thick Kettlebell and the Velora Extra Thick Kettlebell?",
])
def test_the_cheaper_of_two_named_products_comes_from_the_catalog(message: str) -> None:
    assert comparison_reply(message, LISTED) == "[2] is cheaper than [1]."
    shown = rendered("[2] is cheaper than [1].", LISTED)
    assert shown == "Ironclad Extra Thick Kettlebell (Black) (£45.50) is cheaper than Velora Extra Thick Kettlebell (Black) (£60.00)."


def test_which_costs_more_same_price_and_stock_are_said_as_asked() -> None:
    assert comparison_reply("which is more expensive, the velora extra thick kettlebell or the strider kettlebell "
                            "stand?", LISTED) == "[1] costs more than [5]."
    assert comparison_reply("ironclad extra thick kettlebell vs ironclad grip dumbbell", LISTED) == \
        "[2] and [4] cost the same. [4] is out of stock at the moment."


@pytest.mark.parametrize("message", [
    "is the velora extra thick kettlebell any good?",  # one product, no comparison asked
    "velora kettlebell or ironclad kettlebell, which is cheaper?",  # partial names: the model answers
    "velora extra thick kettlebell or ironclad extra kettlebell, which is cheaper?",  # one word left out
    "which is cheaper: velora extra thick kettlebell, ironclad extra thick kettlebell or strider kettlebell stand?",
    "ironclad extra thick kettlebell or ironclad grip dumbbell?",  # two named, but no comparison asked
])
def test_anything_less_certain_is_left_to_the_model(message: str) -> None:
    assert comparison_reply(message, LISTED) is None


def test_a_title_in_several_variants_is_compared_by_its_cheapest() -> None:
    listed = [doc("K-6", "Velora Extra Thick Kettlebell (Gold)", 99.0), *LISTED[:2],
              doc("K-7", "Ironclad Extra Thick Kettlebell (Pink)", 39.0)]
    assert compared("velora extra thick kettlebell or ironclad extra thick kettlebell: which is cheaper?",
                    listed) == (listed[3], listed[1])
    assert comparison_reply("velora extra thick kettlebell or ironclad extra thick kettlebell: which is cheaper?",
                            listed) == "[4] is cheaper than [2]."


def test_anything_cheaper_after_a_recommendation_comes_from_the_catalog() -> None:
    shown = "Velora Extra Thick Kettlebell (Black) (£60.00) is a good fit. Another is Strider Kettlebell Stand (£19.00)."
    assert shown_first(shown, LISTED) == LISTED[0]  # named first, by its exact title
    assert cheaper_reply("anything cheaper?", LISTED[0], LISTED) == "Yes, [5] is cheaper."  # K-4 is out of stock
    assert cheaper_reply("Do you have something less expensive?", LISTED[4], LISTED) == NOTHING_CHEAPER
    elsewhere = doc("X-9", "Titan Kettlebell", 25.0)  # shown before, not listed now: the listed ones below it
    assert cheaper_reply("any cheaper ones?", elsewhere, LISTED) == "Yes, [5] is cheaper."


@pytest.mark.parametrize(("message", "shown"), [
    ("anything cheaper in red with a rubber grip for my garage gym?", LISTED[0]),
    ("anything cheaper than 30?", LISTED[0]),  # a limit of its own
    ("anything cheaper?", None),  # the reply before named no product
    ("what else do you have?", LISTED[0]),
])
def test_a_cheaper_follow_up_with_wishes_of_its_own_is_left_to_the_model(message: str,
                                                                         shown: ProductDoc | None) -> None:
    assert cheaper_reply(message, shown, LISTED) is None


@pytest.mark.parametrize(("message", "expected"), [
    ("is the Ironclad Extra Thick Kettlebell (Black) really only $1?", "No, [2] costs more than that."),
    ("is the Ironclad Extra Thick Kettlebell (Black) really only $45.50?", "Yes, [2]."),
    ("is the Velora Extra Thick Kettlebell (Black) really only $5?", "No, [1] and [6] cost more than that."),
    ("wait the velora extra thick kettlebell (black) is just $70 today??", "No, [1] and [6] cost less than that."),
    ("so the Velora Extra Thick Kettlebell (Black) costs $61?", "No, [1] and [6] cost other prices."),
    ("is the Velora Extra Thick Kettlebell (Black) really only $62?", "Yes, [6]."),
])
def test_a_claimed_price_is_answered_for_every_product_of_the_title_named(message: str, expected: str) -> None:
    from bot.comparison import price_claim_reply

    twin = [*LISTED, doc("K-6", "Velora Extra Thick Kettlebell (Black)", 62.0)]  # one displayed title, two products
    assert price_claim_reply(message, twin) == expected
