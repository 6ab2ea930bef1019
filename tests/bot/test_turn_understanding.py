"""Acts on the shown products, resolved against the conversation's state, and the catalog's answers to them."""

from __future__ import annotations

import pytest

from bot.mentions import rendered
from bot.models import Message, Role
from bot.turn.answers import answer
from bot.turn.state import dialogue_state
from bot.turn.understand import Act, understand
from bot.turn_events import ReplyMeta
from retrieval.catalog import ProductDoc

SHOWN = [
    ProductDoc(sku="B1", title="Timberline Waterproof Hiking Boot (olive)", category="boots", price=109.99, stock=12,
               description="The Timberline hiking boot is built from full-grain leather for day hikes. "
                           "Features: waterproof. Colour: olive.", attributes={"colour": "olive"}),
    ProductDoc(sku="B2", title="Ridgeway Vibram sole Hiking Boot (navy)", category="boots", price=90.99, stock=0),
    ProductDoc(sku="B3", title="Summit Trail Hiking Boot (red)", category="boots", price=74.99, stock=3),
    ProductDoc(sku="B4", title="Timberline Waterproof Hiking Boot (sand)", category="boots", price=99.99, stock=7,
               attributes={"colour": "sand"}),
]


@pytest.mark.parametrize(("text", "kind", "refs"), [
    ("is the first one in stock?", "stock", [0]),
    ("is the 2nd one available", "stock", [1]),
    ("#3 in stock??", "stock", [2]),
    ("tell me more about the second one", "details", [1]),
    ("what about the last one?", "details", [3]),
    ("how much is number 3", "price", [2]),
    ("I'll take the third one", "decide", [2]),
    ("add the first one to my cart pls", "decide", [0]),
    ("is the red one in stock?", "stock", [2]),
    ("which one is cheaper, the first or the second?", "compare", [0, 1]),
    ("the Ridgeway, how much?", "price", [1]),
])
def test_references_to_the_cards_are_resolved(text: str, kind: str, refs: list[int]) -> None:
    assert understand(text, SHOWN, []) == Act(kind, refs=refs)


@pytest.mark.parametrize(("text", "kind", "refs"), [
    ("is it in stock?", "stock", [1]),
    ("how much is it", "price", [1]),
    ("I'll take it", "decide", [1]),
    ("which is cheaper?", "compare", [1, 3]),
    ("is it waterproof?", "details", [1]),
    ("in stock?", "stock", [1]),
])
def test_pronouns_and_bare_questions_refer_to_the_product_in_focus(text: str, kind: str, refs: list[int]) -> None:
    assert understand(text, SHOWN, [1, 3]) == Act(kind, refs=refs)


def test_an_ambiguous_reference_asks_which_one_listing_the_candidates() -> None:
    act = understand("is the Timberline one in stock?", SHOWN, [])
    assert act == Act("stock", choices=[0, 3])
    assert rendered(answer(act, SHOWN), SHOWN) == (
        "Which one do you mean: Timberline Waterproof Hiking Boot (olive) ($109.99) or "
        "Timberline Waterproof Hiking Boot (sand) ($99.99)?")
    assert understand("how much is it?", SHOWN, []) == Act("price", choices=[0, 1, 2, 3])


@pytest.mark.parametrize("text", [
    "do you have waterproof running shoes under $100?", "I need a jacket that is warm", "anything cheaper?",
    "show me something like the second one", "first time buying boots, what do you recommend?",
    "my last order is late AGAIN. great, just great.", "hi", "thanks!", "what's your returns policy?",
    "in stock ones only pls", "only show me the in-stock items", "which of these can i buy right now?",
])
def test_searches_and_other_messages_are_not_about_the_cards(text: str) -> None:
    assert understand(text, SHOWN, [0]) is None


def test_pronouns_do_not_count_off_the_product_route() -> None:
    assert understand("where is it?", SHOWN, [0], loose=False) is None
    assert understand("is the first one in stock?", SHOWN, [0], loose=False) == Act("stock", refs=[0])


@pytest.mark.parametrize(("act", "expected"), [
    (Act("stock", refs=[0]), "Yes, Timberline Waterproof Hiking Boot (olive) ($109.99) is in stock."),
    (Act("stock", refs=[1]), "Ridgeway Vibram sole Hiking Boot (navy) ($90.99) is out of stock at the moment."),
    (Act("stock", refs=[2]), "Yes, Summit Trail Hiking Boot (red) ($74.99) is in stock (only 3 left)."),
    (Act("price", refs=[2]), "Here it is: Summit Trail Hiking Boot (red) ($74.99)."),
    (Act("compare", refs=[0, 1]), "Ridgeway Vibram sole Hiking Boot (navy) ($90.99) is cheaper than Timberline "
                                  "Waterproof Hiking Boot (olive) ($109.99). Ridgeway Vibram sole Hiking Boot (navy) "
                                  "is out of stock at the moment."),
    (Act("decide", refs=[0]), "Good choice: Timberline Waterproof Hiking Boot (olive) ($109.99). Add it to your "
                              "cart from its card."),
    (Act("details", refs=[0]), "Timberline Waterproof Hiking Boot (olive) ($109.99): The Timberline hiking boot is "
                               "built from full-grain leather for day hikes. Features: waterproof. It is in stock. "
                               "It also comes in sand."),
])
def test_the_answers_come_from_the_catalog(act: Act, expected: str) -> None:
    assert rendered(answer(act, SHOWN), SHOWN) == expected


def _reply(mid: int, reply_to: int, skus: list[str], *, mentions: list[str] = (), focus: list[str] = (),
           filters: str = "") -> Message:
    meta = ReplyMeta(reply_to=reply_to, model="m", backend="b", adapter=None, route="product", retrieved_skus=skus,
                     retrieval_scores=[], reasons=[], filters=filters, prompt={},
                     mentions=[{"n": 1, "sku": s, "text": s} for s in mentions], focus=list(focus))
    return Message(id=mid, conversation_id=1, seq=mid, role=Role.ASSISTANT, text="...", meta=meta.as_json())


def _shopper(mid: int, text: str) -> Message:
    return Message(id=mid, conversation_id=1, seq=mid, role=Role.SHOPPER, text=text, meta={})


def test_the_state_comes_from_the_stored_replies() -> None:
    history = [_shopper(1, "waterproof hiking boots under $120"),
               _reply(2, 1, ["B1", "B2", "B3"], mentions=["B2"], filters="under $120"),
               _shopper(3, "is the first one in stock?"),
               _reply(4, 3, ["B1", "B2", "B3"], mentions=["B1"], focus=["B1"])]
    state = dialogue_state(history)
    assert state.shown == ["B1", "B2", "B3"]
    assert state.focus == ["B1", "B2"]  # the latest first, then what the reply before named
    assert state.need == "waterproof hiking boots under $120" and state.constraint == "under $120"
    lookup = {p.sku: p for p in SHOWN}.get
    assert state.describe(lookup) == ("talking about: Timberline Waterproof Hiking Boot (olive), Ridgeway Vibram "
                                      "sole Hiking Boot (navy); wants: waterproof hiking boots under $120 "
                                      "(under $120)")


def test_a_new_list_starts_a_new_focus_and_need() -> None:
    history = [_shopper(1, "hiking boots"), _reply(2, 1, ["B1", "B2"], mentions=["B1"]),
               _shopper(3, "and rain jackets?"), _reply(4, 3, ["J1", "J2"], mentions=[]),
               _shopper(5, "where is my order?"), _reply(6, 5, [])]
    state = dialogue_state(history)
    assert state.shown == ["J1", "J2"] and state.focus == [] and state.need == "and rain jackets?"
    assert dialogue_state([_shopper(1, "hi")]).shown == []


def test_a_card_named_in_full_is_that_card_even_when_a_fragment_would_be_ambiguous() -> None:
    act = understand("is the Timberline Waterproof Hiking Boot (sand) really only $20?", SHOWN, [])
    assert act == Act("claim", refs=[3], claim=20.0)
    assert rendered(answer(act, SHOWN), SHOWN) == ("No, Timberline Waterproof Hiking Boot (sand) ($99.99) costs more "
                                                   "than that.")


@pytest.mark.parametrize("text", ["and a cheaper one?", "in red?", "any cheaper ones?"])
def test_a_wish_for_other_products_is_a_search_even_with_cards_in_focus(text: str) -> None:
    assert understand(text, SHOWN, [1, 3]) is None


def test_a_product_named_that_is_not_on_the_cards_is_left_to_the_search() -> None:
    # another colour of a card's product, with a claimed price: not the card's variant
    assert understand("wait the Summit Trail Hiking Boot (navy) is just $8 today??", SHOWN, []) is None
    assert understand("is the Timberline Waterproof Hiking Boot really only $5?", SHOWN, []) is None
