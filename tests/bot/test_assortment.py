"""The catalog answers "do you sell X?" and "the cheapest X?": the real encoder, FAISS and BM25 over the
test demo store (960 products)."""

from __future__ import annotations

import json

import pytest

from bot.bench.assortment import QUERIES
from bot.bench.conversation import ABSENT
from bot.routing import route
from bot.turn.assortment import (
    PROBES,
    THRESHOLD_RANGE,
    answer_assortment,
    plural,
    probe_scores,
    product_words,
    stem,
    store_threshold,
)
from retrieval.embed import Encoder
from retrieval.index import ProductIndex
from retrieval.search import ProductSearch


@pytest.fixture(scope="module")
def search(saved_index, encoder: Encoder) -> ProductSearch:  # type: ignore[no-untyped-def]
    return ProductSearch(ProductIndex.load(saved_index), encoder)


def docs(search: ProductSearch) -> list:  # type: ignore[type-arg]
    return [d for d in search.index.docs if d is not None]


@pytest.mark.parametrize(("text", "words"), [
    ("u guys carry a sofa?", ["sofa"]), ("Do you sell something for my dog?", ["dog"]),
    ("whats the cheapest hiking boots u have", ["hiking", "boots"]), ("cheapest kitchen appliance please",
                                                                       ["kitchen", "appliance"]),
    ("do you have waterproof hiking boots under $120?", ["waterproof", "hiking", "boots"]),
    ("lowest price yoga mats?", ["yoga", "mats"])])
def test_the_product_words_are_read_out_of_the_question(text: str, words: list[str]) -> None:
    assert product_words(text) == words


def test_plurals_and_stems() -> None:
    assert [stem(w) for w in ("boots", "dresses", "glass", "berries", "pans")] == ["boot", "dress", "glass", "berry",
                                                                                   "pan"]
    assert plural(["wedding", "dress"]) == "wedding dresses" and plural(["frying", "pan"]) == "frying pans"


def test_what_the_store_sells_is_carried_with_cards_of_that_kind(search: ProductSearch) -> None:
    a = answer_assortment(search, "do you sell a frying pan?")
    assert a is not None and a.act == "carried" and a.text.startswith("Yes, we carry frying pans: [1]")
    assert a.cards and all("Frying Pan" in p.title for p in a.cards)
    for text in ("where can i find a kettle?", "does your shop sell kettles?", "any electric kettles"):
        kettles = answer_assortment(search, text)
        assert kettles is not None and kettles.act == "carried" and all("Kettle" in p.title for p in kettles.cards)
    pots = answer_assortment(search, "do u sell stock pots?")  # a plural the titles do not have
    assert pots is not None and pots.act == "carried" and all("Pot" in p.title for p in pots.cards)


@pytest.mark.parametrize("text", ["have you got a sofa?", "u guys carry a lawn mower?", "have you got car tyres",
                                  "got any hammocks?", "any sofas?",
                                  "any printer ink in your shop?", "have you got a wedding dress"])
def test_what_it_does_not_sell_is_not_carried_and_no_product_is_named(search: ProductSearch, text: str) -> None:
    a = answer_assortment(search, text)
    assert a is not None and a.act == "not_carried" and a.cards == []
    assert a.text.startswith("Sorry, we don't carry") and "[" not in a.text


def test_the_cheapest_is_the_cheapest_in_stock_of_that_kind(search: ProductSearch) -> None:
    a = answer_assortment(search, "whats the cheapest yoga mats u have")
    assert a is not None and a.act == "cheapest" and "[1]" in a.text
    mats = [p for p in docs(search) if p.title.split(" (")[0].endswith("Yoga Mat") and p.in_stock]
    assert a.cards[0].price == min(p.price for p in mats)
    assert [p.price for p in a.cards] == sorted(p.price for p in a.cards)


def test_the_dearest_and_the_cheapest_within_the_need_said_before(search: ProductSearch) -> None:
    a = answer_assortment(search, "most expensive over-ear headphones?")
    assert a is not None and a.act == "dearest"
    phones = [p for p in docs(search) if "Over-Ear Headphones" in p.title and p.in_stock]
    assert a.cards[0].price == max(p.price for p in phones)
    b = answer_assortment(search, "what's the cheapest one?", need="hiking boots under $120")
    assert b is not None and b.act == "cheapest" and b.cards[0].price <= 120
    boots = [p for p in docs(search) if p.title.split(" (")[0].endswith("Hiking Boot") and p.in_stock
             and p.price <= 120]
    assert b.cards[0].price == min(p.price for p in boots)


@pytest.mark.parametrize("text", ["do you have it in red?", "do you have a returns policy?",
                                  "do you have waterproof hiking boots under $120?", "hello there",
                                  "do you have anything warm for winter?", "u guys carry something warm?",
                                  "any cheaper?", "any in red?", "any other colours?", "any update on my order?"])
def test_not_a_question_the_catalog_answers_alone(search: ProductSearch, text: str) -> None:
    assert answer_assortment(search, text) is None


def test_the_intent_model_cannot_send_a_product_question_to_a_policy() -> None:
    assert route("Do you sell tent?", "delivery_period").kind == "product"
    assert route("do you have a returns policy?", "check_refund_policy").kind == "policy"


def test_the_calibration_words_are_not_the_suites_nor_the_probes() -> None:
    absent = set(json.loads(QUERIES.read_text())["absent"])
    suite = {a.removeprefix("a ") for a in ABSENT}
    assert not absent & suite and not set(PROBES) & (absent | suite)


def test_each_store_reads_its_own_threshold_from_the_probes(search: ProductSearch) -> None:
    scores = probe_scores(search)
    threshold = store_threshold(search)
    assert len(scores) >= len(PROBES) // 2 and THRESHOLD_RANGE[0] <= threshold <= THRESHOLD_RANGE[1]
    assert store_threshold(search, margin=0.1) >= threshold
