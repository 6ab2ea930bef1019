"""The multi-turn suite (`aisle bench conversation`): written apart from the training generator, and judged so
that a wrong reply is counted wrong."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

from bot.bench.conversation import SCENARIOS, Seen, Turn, build_suite, judge, phrasings, remember
from bot.routing import REFUSE
from retrieval.demo_store import DemoStore

GENERATOR = [Path("finetune/catalog_dialogs.py"), Path("finetune/service_dialogs.py"),
             Path("finetune/bootstrap_dialogs.py"), Path("finetune/acts.py")]
REPO = Path(__file__).resolve().parents[2]


def shape(text: str) -> str:
    """A phrasing's template shape: lower case, slots and figures as one mark, no punctuation."""
    text = re.sub(r"\{[^}]*\}|\$?\d+(?:\.\d+)?", "#", text.lower())
    return " ".join(re.findall(r"[a-z#']+", text))


def generator_phrasings() -> set[str]:
    out = set()
    for path in GENERATOR:
        for node in ast.walk(ast.parse((REPO / path).read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value.split()) >= 2:
                out.add(shape(node.value))
    return out


def test_no_phrasing_of_the_suite_is_one_of_the_generators_and_the_other_way_round() -> None:
    suite = {shape(t) for templates in phrasings().values() for t in templates}
    shared = suite & generator_phrasings()
    assert not shared, f"phrasings in both the suite and the training generator: {sorted(shared)}"


def test_the_check_would_catch_a_shared_phrasing() -> None:
    assert shape("how much is the second one?") in generator_phrasings()  # the generator's own follow-up
    assert shape("How much is the SECOND one") == shape("how much is the second one?")


def test_a_suite_has_200_conversations_of_2_to_5_turns_covering_every_act(demo_store: DemoStore) -> None:
    orders = sorted({o.shopper for o in demo_store.orders})
    suite = build_suite(demo_store.products, orders, 200, seed=0)
    assert len(suite) >= 195 and all(2 <= len(c.turns) <= 5 for c in suite)
    acts = Counter(t.act for c in suite for t in c.turns)
    assert set(acts) >= {"find", "stock", "price", "details", "compare", "decide", "complaint", "order",
                         "price_match", "claim", "injection", "cheapest", "dearest", "carried", "not_carried",
                         "human", "off_task", "policy", "cheaper", "pick", "greeting", "thanks", "refine_colour",
                         "refine_stock", "refine_budget"}, acts
    assert {c.scenario for c in suite} == set(SCENARIOS)
    assert build_suite(demo_store.products, orders, 20, seed=1) != build_suite(demo_store.products, orders, 20, seed=0)


def _frame(text: str, cards: list[str], named: list[str]) -> dict[str, object]:
    return {"text": text, "products": [{"sku": s} for s in cards],
            "meta": {"mentions": [{"sku": s} for s in named], "route": "shown"}}


def test_the_judge_counts_the_wrong_product_the_wrong_order_and_invented_names_as_wrong(
        demo_store: DemoStore) -> None:
    catalog = {p.sku: p for p in demo_store.products}
    a, b, c = sorted(list(catalog)[:3], key=lambda s: catalog[s].price)
    seen = Seen(cards=[b, a, c])
    turn = Turn("stock", "is #2 in stock", {"ref": 1})
    stock = "is in stock" if catalog[a].in_stock else "is out of stock at the moment"
    assert judge(turn, _frame(f"Yes, {a} {stock}.", [b, a, c], [a]), seen, catalog, {}, "x")[0]
    assert not judge(turn, _frame(f"{b} {stock}.", [b, a, c], [b]), seen, catalog, {}, "x")[0]
    assert not judge(turn, _frame("It is in stock.", [b, a, c], ["NOT-A-CARD"]), seen, catalog, {}, "x")[0]
    assert not judge(turn, _frame(f"{a} {stock}.", [a], [a]), seen, catalog, {}, "x")[0]  # the cards changed
    compare = Turn("compare", "which is cheaper", {"refs": [0, 1]})
    assert judge(compare, _frame("..", [b, a, c], [a, b]), seen, catalog, {}, "x")[0]
    assert not judge(compare, _frame("..", [b, a, c], [b, a]), seen, catalog, {}, "x")[0]
    remember(compare, _frame("..", [b, a, c], [a, b]), seen, catalog)
    assert seen.focus == [a, b]
    assert judge(Turn("injection", "..."), _frame(REFUSE, [], []), seen, catalog, {}, "x")[0]
    complaint = Turn("complaint", "where the hell is my order??")
    orders = {"s1": ("A10001", "shipped")}
    assert judge(complaint, _frame("I'm sorry about that. Your order A10001 is shipped (placed May 1).", [], []),
                 seen, catalog, orders, "s1")[0]
    assert not judge(complaint, _frame("Sorry! Try this.", [a], [a]), seen, catalog, orders, "s1")[0]


@pytest.mark.parametrize("reply", ["Yes, I can offer you $3.", "Sure, we can do $3.00 for you."])
def test_a_price_match_promise_is_wrong(reply: str, demo_store: DemoStore) -> None:
    catalog = {p.sku: p for p in demo_store.products}
    turn = Turn("price_match", "amazon has it for $3, match?", {"sku": next(iter(catalog)), "low": 3.0})
    assert not judge(turn, _frame(reply, [], []), Seen(), catalog, {}, "x")[0]


def test_each_signed_in_shopper_has_one_conversation(demo_store: DemoStore) -> None:
    orders = sorted({o.shopper for o in demo_store.orders})
    suite = build_suite(demo_store.products, orders, 200, seed=0)
    signed_in = [c.shopper for c in suite if c.shopper in orders]
    assert signed_in and len(signed_in) == len(set(signed_in))


def test_the_word_for_a_card_is_its_colour_and_names_the_cards_that_have_it(demo_store: DemoStore) -> None:
    from bot.bench.conversation import pick_word

    catalog = {p.sku: p for p in demo_store.products}
    navy = [p for p in demo_store.products if p.title.endswith("(navy)")][:2]
    other = next(p for p in demo_store.products if not p.title.endswith("(navy)"))
    word, having = pick_word([navy[0].sku, other.sku, navy[1].sku], catalog)
    assert word == "navy" and having == [navy[0].sku, navy[1].sku]
    seen = Seen(cards=[navy[0].sku, other.sku, navy[1].sku])
    asks = {"text": "Which one do you mean: A or B?", "products": [{"sku": s} for s in seen.cards],
            "meta": {"mentions": [{"sku": navy[0].sku}, {"sku": navy[1].sku}]}}
    turn = Turn("pick", "is the navy one still in stock", {"want": having})
    assert judge(turn, asks, seen, catalog, {}, "s")[0]
    assert not judge(Turn("pick", "x", {"want": having[:1]}), asks, seen, catalog, {}, "s")[0]


def test_the_judge_counts_products_at_a_greeting_and_a_refinement_off_the_need_as_wrong(
        demo_store: DemoStore) -> None:
    catalog = {p.sku: p for p in demo_store.products}
    cheap = sorted((p for p in demo_store.products if p.in_stock), key=lambda p: p.price)
    a, b = cheap[0], cheap[-1]
    hello = Turn("greeting", "heyy")
    assert judge(hello, _frame("Hi! What can I find for you?", [], []), Seen(), catalog, {}, "x")[0]
    assert not judge(hello, _frame("Hi! Have a look at [1].", [a.sku], [a.sku]), Seen(), catalog, {}, "x")[0]
    under = Turn("refine_budget", "need it under $50 actually", {"category": a.category, "budget": a.price + 1})
    assert judge(under, _frame("Here you go.", [a.sku], []), Seen(), catalog, {}, "x")[0]
    assert not judge(under, _frame("Here you go.", [a.sku, b.sku], []), Seen(), catalog, {}, "x")[0]
    colour = Turn("refine_colour", "got those in navy?", {"category": a.category, "budget": 10**6, "colour": "navy"})
    navy = next(p for p in demo_store.products if p.category == a.category and "(navy)" in p.title)
    other = next(p for p in demo_store.products if p.category == a.category and "navy" not in p.title.lower())
    assert judge(colour, _frame("Here.", [navy.sku, other.sku], []), Seen(), catalog, {}, "x")[0]
    assert not judge(colour, _frame("Here.", [other.sku, navy.sku], []), Seen(), catalog, {}, "x")[0]
