"""Where a turn's facts come from: the shopper's orders, the store's policies, or the catalog.

An order number in the message always routes to the orders table; otherwise the
intent decides. The reply to an order or policy question opens with the real
facts, written by the server, so the model never makes up a status or a policy.

A request for work a shop assistant does not do (write code, a query, an essay, a poem)
is declined by the server in its own words (route ``off_task``), without calling the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Order

ORDER_NUMBER = re.compile(r"\b([A-Z]\d{5,})\b", re.I)
_WORK = (r"(?:code|function|script|program|algorithm|query|regex|class|essay|poem|story|song|lyrics|"
         r"cover letter|homework|assignment|article|blog post|speech)")
_LANGUAGES = r"(?:python|javascript|typescript|java|sql|c\+\+|c#|rust|golang|bash|php|ruby|html|css|kotlin|swift)"
OFF_TASK = re.compile(
    rf"(?:^|[.!?,:;]\s*)(?:hey,?\s+|hi,?\s+|ok,?\s+|so,?\s+)?(?:(?:can|could|would|will) you\s+|please\s+|pls\s+|i need you to\s+|"
    rf"i want you to\s+|help me\s+)?(?:write|code|generate|compose|draft|implement|create|make|give)\s+(?:me\s+|us\s+)?"
    rf"(?:a|an|the|some|my)?\s*(?:[\w-]+\s+){{0,3}}?(?:{_WORK}|{_LANGUAGES})\b"
    rf"|\b{_LANGUAGES}\s+(?:code|function|script|program|query|snippet|class)\b"
    rf"|\bdo my (?:homework|assignment)\b",
    re.IGNORECASE)
"""Requests for work other than shopping ("write me a python function", "an essay about...", "SQL query")."""
NOT_OFF_TASK = re.compile(r"\b(?:discount|promo|coupon|voucher|gift|tracking|order|confirmation|postal|zip)\s+code\b"
                          r"|\bgift (?:card|message|note)\b|\breview\b", re.IGNORECASE)
DECLINE = ("I can only help with shopping here: finding products, your orders, delivery and returns. "
           "What can I find for you?")
ORDER_INTENTS = frozenset({"track_order", "cancel_order", "change_order"})
POLICY_INTENTS = {
    "return_item": "returns", "get_refund": "returns", "check_refund_policy": "returns", "track_refund": "returns",
    "delivery_period": "delivery", "delivery_options": "delivery", "check_cancellation_fee": "cancellation",
}


@dataclass(frozen=True, slots=True)
class Route:
    kind: str  # "order", "policy", "off_task" or "product"
    topic: str | None = None
    order_number: str | None = None


MIN_CONFIDENCE = 0.5
"""Below this calibrated confidence the intent does not route; the catalog answers."""


def route(text: str, intent: str | None, confidence: float = 1.0) -> Route:
    """Pick the route for a message."""
    if m := ORDER_NUMBER.search(text):
        return Route("order", order_number=m.group(1).upper())
    if off_task(text):
        return Route("off_task")
    if confidence < MIN_CONFIDENCE:
        return Route("product")
    if intent in ORDER_INTENTS:
        return Route("order")
    if intent in POLICY_INTENTS:
        return Route("policy", topic=POLICY_INTENTS[intent])
    return Route("product")


def off_task(text: str) -> bool:
    """Whether the message asks for work a shop assistant does not do (code, essays, poems)."""
    return OFF_TASK.search(text) is not None and NOT_OFF_TASK.search(text) is None


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
