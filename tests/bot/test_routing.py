from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Order, User
from bot.routing import off_task, order_grounding, policy_grounding, route


@pytest.mark.parametrize(("text", "intent", "kind"), [
    ("where is my order A10023?", None, "order"),
    ("where is my order a10023", "product_search", "order"),
    ("I want to track my package", "track_order", "order"),
    ("how do I get my money back", "get_refund", "policy"),
    ("how long does shipping take", "delivery_period", "policy"),
    ("waterproof boots", "product_search", "product"),
    ("waterproof boots", None, "product"),
    ("how do I return this?", "return_item", "policy"),
    ("I'd like to place an order", "place_order", "product"),
])
def test_route(text: str, intent: str | None, kind: str) -> None:
    assert route(text, intent).kind == kind


OFF_TASK = ["write me a python function that reverses a string", "Write a SQL query that lists all customers",
            "can you write an essay about climate change?", "please write a poem about the sea",
            "give me javascript code to validate an email", "I need you to write my cover letter",
            "hey, write a short story about a dragon", "python function to sort a list", "do my homework",
            "could you generate a regex for emails", "compose a song for my wife"]
SHOPPING = ["give me a discount code", "what's the promo code?", "do you have a notebook to write in?",
            "can I write a review?", "I need a pen to write letters", "do you have python books?",
            "a story book for kids", "write me a gift message please", "can you give me the tracking code",
            "make me an offer", "create an account", "waterproof running shoes under $100"]


@pytest.mark.parametrize("text", OFF_TASK)
def test_requests_for_other_work_are_declined_whatever_the_intent(text: str) -> None:
    assert off_task(text) and route(text, "product_search", 0.99).kind == "off_task"


@pytest.mark.parametrize("text", SHOPPING)
def test_shopping_requests_that_look_like_work_are_not(text: str) -> None:
    assert not off_task(text) and route(text, "product_search").kind == "product"


def test_unsure_intents_do_not_route() -> None:
    assert route("how do I return this?", "change_order", 0.49).kind == "product"
    assert route("order A10023 please", "product_search", 0.1).kind == "order"  # a number always routes


def test_orders_are_grounded_on_the_shoppers_own_orders(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        mine = s.scalars(select(Order).order_by(Order.id)).first()
        assert mine is not None
        other = s.scalars(select(Order).where(Order.user_id != mine.user_id)).first()
        assert other is not None
        g = order_grounding(s, user_id=mine.user_id, number=mine.number)
        assert mine.status in g.opening and mine.number in g.opening and mine.status in g.facts
        stolen = order_grounding(s, user_id=mine.user_id, number=other.number)
        assert "can't find" in stolen.opening and other.status not in stolen.facts
        latest = s.scalars(select(Order).where(Order.user_id == mine.user_id).order_by(Order.created_at.desc())).first()
        assert latest is not None and latest.number in order_grounding(s, user_id=mine.user_id, number=None).opening
        nobody = User(external_id="no-orders")
        s.add(nobody)
        s.flush()
        assert "can't find" in order_grounding(s, user_id=nobody.id, number=None).opening


def test_policy_grounding_quotes_the_configured_text() -> None:
    g = policy_grounding("returns", {"returns": "Within 14 days."})
    assert "Within 14 days." in g.opening and "Within 14 days." in g.facts
