"""Where a turn's facts come from: the shopper's orders, the store's policies, or the catalog.

An order number in the message always routes to the orders table; otherwise the
intent decides. The reply to an order or policy question opens with the real
facts, written by the server, so the model never makes up a status or a policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Order

ORDER_NUMBER = re.compile(r"\b([A-Z]\d{5,})\b", re.I)
ORDER_INTENTS = frozenset({"track_order", "cancel_order", "change_order"})
POLICY_INTENTS = {
    "return_item": "returns", "get_refund": "returns", "check_refund_policy": "returns", "track_refund": "returns",
    "delivery_period": "delivery", "delivery_options": "delivery", "check_cancellation_fee": "cancellation",
}


@dataclass(frozen=True, slots=True)
class Route:
    kind: str  # "order", "policy" or "product"
    topic: str | None = None
    order_number: str | None = None


MIN_CONFIDENCE = 0.5
"""Below this calibrated confidence the intent does not route; the catalog answers."""


def route(text: str, intent: str | None, confidence: float = 1.0) -> Route:
    """Pick the route for a message."""
    if m := ORDER_NUMBER.search(text):
        return Route("order", order_number=m.group(1).upper())
    if confidence < MIN_CONFIDENCE:
        return Route("product")
    if intent in ORDER_INTENTS:
        return Route("order")
    if intent in POLICY_INTENTS:
        return Route("policy", topic=POLICY_INTENTS[intent])
    return Route("product")


@dataclass(frozen=True, slots=True)
class Grounding:
    """Facts for the prompt and the opening the server writes itself."""

    facts: str
    opening: str


def order_grounding(session: Session, *, user_id: int, number: str | None) -> Grounding:
    """The named order (if it is this shopper's) or their latest one, as facts."""
    query = select(Order).where(Order.user_id == user_id)
    order = session.scalar(query.where(Order.number == number) if number else
                           query.order_by(Order.created_at.desc()).limit(1))
    return no_order(number) if order is None else order_facts(order)


def no_order(number: str | None) -> Grounding:
    what = f"order {number}" if number else "an order"
    return Grounding(f"No {'order ' + number if number else 'order'} was found on this shopper's account.",
                     f"I can't find {what} on your account. ")


def order_facts(order: Order) -> Grounding:
    """An order's facts for the prompt, and the reply's opening with its real status."""
    items = ", ".join(f"{i.get('qty', 1)} x {i.get('title', i.get('sku'))}" for i in order.items)
    facts = (f"Order {order.number}: status {order.status}; placed {order.created_at:%Y-%m-%d}; "
             f"last update {order.updated_at:%Y-%m-%d}; items: {items}; total {order.total:.2f}.")
    return Grounding(facts, f"Your order {order.number} is {order.status} "
                            f"(placed {order.created_at:%B %d, %Y}). ")


def policy_grounding(topic: str, policies: dict[str, str]) -> Grounding:
    text = policies[topic]
    return Grounding(f"Store {topic} policy: {text}", f"Our {topic} policy: {text} ")
