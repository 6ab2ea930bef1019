"""Where a turn's facts come from: the shopper's orders, the store's policies, or the catalog.

An order number in the message always routes to the orders table; otherwise the
intent decides. The reply to an order or policy question opens with the real
facts, written by the server, so the model never makes up a status or a policy.

Some turns the server answers whole, in its own words, without calling the model
(:func:`server_reply`; serving and ``aisle finetune evaluate`` both use it):

- a request for work a shop assistant does not do (write code, a query, an essay, a poem):
  declined (route ``off_task``);
- an attempt to override the instructions or to get at the prompt, the staff's secrets or other
  shoppers' data: declined (route ``injection``);
- a request for a human: told how to reach one (route ``human``; the intent model routes it too);
- two listed products compared by name, or "anything cheaper?" after a recommendation: the catalog's
  answer (routes ``compare`` and ``cheaper``, :mod:`bot.comparison`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.comparison import cheaper_reply, comparison_reply, price_claim_reply, price_match_reply
from bot.config import Settings
from bot.models import Order
from bot.turn.acts import ActGuess
from bot.turn.assortment import asks_about_assortment
from bot.turn.refine import colours_in
from retrieval.catalog import ProductDoc
from retrieval.query import parse_filters

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
INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,30}\b(?:previous|prior|above|earlier|all|your|these|"
    r"those|system)\b.{0,20}\b(?:instructions?|prompts?|rules|guidelines|directions)\b"
    r"|\b(?:ignore|disregard|forget)\b.{0,20}\babove\b"
    r"|\bsystem (?:prompt|message|instructions?)\b|\byour (?:instructions|prompt)\b"
    r"|\b(?:repeat|print|show|reveal|tell me) (?:me )?(?:everything|all|the text|what(?:'s| is)) (?:above|before)\b"
    r"|\byou are now\b|\bdeveloper mode\b|\bjailbreak|\bno (?:rules|restrictions)\b"
    r"|\bpretend (?:you are|you're|to be)\b|\b(?:admin|staff|employee|internal) (?:password|discount|code|account)"
    r"|\b(?:other|another|all) (?:customers?|shoppers?|users?|clients?)(?:'s?)? (?:e-?mails?|addresses|phone|"
    r"numbers?|orders?|data|details|names|accounts?|cards?|passwords?)"
    r"|\b(?:e-?mails?|addresses|phone numbers|orders|data|details|names|accounts) of (?:your |the )?(?:other|all) "
    r"(?:customers|shoppers|users|clients)\b"
    r"|\b(?:orders?|account|data|details|address|e-?mail|payments?|refunds?) (?:of|belonging to) "
    r"(?:the |a |an |another |some )?(?:customer|shopper|user|client|person|account holder|someone)\b"
    r"|\b(?:customer|shopper|user|client|account|person) (?:with|whose|named|called|at) (?:the )?"
    r"(?:e-?mail|address|name|phone|number|id)\b"
    r"|\bsomeone else'?s (?:orders?|account|data|details|address|card)\b",
    re.IGNORECASE)
"""Attempts to override the instructions, read the prompt, or get at secrets or other shoppers' data."""
REFUSE = "I can't help with that, but I'm happy to help you find something in our store."
ASKS_FOR_HUMAN = re.compile(
    r"\b(?:talk|speak|chat|connect|transfer|put)\b.{0,20}\b(?:to|with|w)\b.{0,12}\b(?:human|person|people|"
    r"agent|representative|rep|operator|someone|somebody|customer (?:service|support|care)|support team|staff)\b"
    r"|\b(?:want|need|get|give me|is there|any|prefer)\b.{0,10}\b(?:real|live|actual) (?:human|person|agent|people)\b"
    r"|^\W*(?:a |an )?(?:real|live) (?:human|person|agent)\b|\bhuman (?:agent|operator|support)\b"
    r"|\b(?:get|give|find) me (?:a |an )?(?:real )?(?:human|person|agent|representative)\b(?! (?:costume|doll|figure))",
    re.IGNORECASE)
"""Requests for a human colleague ("can I talk to a person?", "a live agent please")."""
COMPLAINT = re.compile(
    r"\b(?:my|the|our) (?:last |latest |recent )?(?:order|package|parcel|delivery|shipment|item|stuff|purchase)\b"
    r".{0,40}\b(?:late|delayed|delay|lost|missing|damaged|broken|wrong|never (?:came|arrived)|"
    r"(?:has|have|hasn'?t|haven'?t|didn'?t|did not|has not|have not|not|still not|still hasn'?t) "
    r"(?:arrived|come|shown up|been (?:delivered|shipped))|stuck|still waiting)\b"
    r"|\bwhere the (?:hell|heck|fuck) is\b.{0,12}\bmy (?:order|package|parcel|delivery|stuff)\b"
    r"|\b(?:still waiting|been waiting|waiting for ages)\b.{0,30}\b(?:order|package|parcel|delivery)\b"
    r"|\b(?:order|package|parcel|delivery)\b.{0,30}\b(?:is|was|are) (?:late|delayed|lost|missing|damaged)\b",
    re.IGNORECASE)
"""A complaint about an order or a delivery ("my last order is late AGAIN", "where the hell is my order??"):
answered with an apology and the shopper's own order, never with a product."""
ASKS_FOR_PRODUCT = re.compile(r"\b(?:i want|i need|i'?m looking for|looking for|find me|show me|do you have|"
                              r"recommend|i'?d like)\s+(?:a|an|some|new|another)\b", re.IGNORECASE)
"""A product asked for in the same message: a complaint with a wish ("my order never came and I want a warm
jacket") is a product question; the products are what was asked for."""
SORRY = "I'm sorry about that. "
ORDER_QUESTION = re.compile(r"\bwhere(?:'?s| is)\b.{0,12}\bmy (?:order|package|parcel|delivery)\b"
                            r"|\btrack (?:my )?(?:order|package|parcel)\b", re.IGNORECASE)
"""A question about the shopper's order, whatever the intent model reads in it."""
PRICE_MATCH = re.compile(
    r"\bprice[- ]?match|\bmatch (?:the |their |that |this |a |his |her )?(?:[\w-]+'s )?(?:price|offer|deal)|\bbeat (?:the|their|that) "
    r"price|\b(?:another|other|a different) (?:shop|store|site|website|seller|retailer)\b.{0,60}\b(?:for|at|sells?|has|"
    r"cheaper)\b|\b(?:amazon|ebay|walmart|target|argos|aliexpress|temu)\b.{0,40}\b(?:cheaper|for|sells?|has|at)\b",
    re.IGNORECASE)
"""A price-match request: answered with the store's configured policy (``AISLE_PRICE_MATCH_POLICY``), never "yes"."""
HUMAN_INTENTS = frozenset({"contact_human_agent"})
HUMAN = 'Of course: press "talk to a human" below and a colleague will join you.'
GREETING = ("Hi! I can help you find products, check on an order, or answer questions about delivery and returns. "
            "What are you looking for today?")
WELCOME = "You're welcome! Is there anything else I can help you with?"
SMALL_TALK = {"greeting": GREETING, "thanks": WELCOME}
"""The server's word back to a greeting or small talk, and to thanks or goodbye, when the act classifier reads the
message so with at least :data:`SMALL_TALK_CONFIDENCE` and it asks nothing else (no figure, no ordinal, short)."""
SMALL_TALK_CONFIDENCE = 0.6
SERVER_REPLIES = {"off_task": DECLINE, "injection": REFUSE, "human": HUMAN, **SMALL_TALK}
REFUSED = frozenset({"off_task", "injection"})
"""Routes whose reply is a refusal: it stands alone, without the offer of a human the policy may make."""
"""The server's whole reply per route it answers alone (a comparison is written per turn)."""
ORDER_INTENTS = frozenset({"track_order", "cancel_order", "change_order"})
POLICY_INTENTS = {
    "return_item": "returns", "get_refund": "returns", "check_refund_policy": "returns", "track_refund": "returns",
    "delivery_period": "delivery", "delivery_options": "delivery", "check_cancellation_fee": "cancellation",
}


ASSORTMENT_ROUTES = frozenset({"not_carried", "carried", "cheapest", "dearest"})
"""Routes of the catalog's answers to "do you sell X?" and "the cheapest X?" (:mod:`bot.turn.assortment`)."""
ANSWERED_BY_SERVER = frozenset({*SERVER_REPLIES, *ASSORTMENT_ROUTES, "compare", "cheaper", "shown", "complaint",
                                "price_match", "claim"})
"""Routes whose whole reply the server writes (a decline, the way to a human, the catalog's answer, a question about
the products on the cards: :mod:`bot.turn`): no model call."""


@dataclass(frozen=True, slots=True)
class Route:
    kind: str  # order, complaint, policy, price_match, off_task, injection, human or product (then maybe compare,
    # cheaper, claim; or shown, for a message about the products on the cards)
    topic: str | None = None
    order_number: str | None = None


MIN_CONFIDENCE = 0.5
"""Below this calibrated confidence the intent does not route; the catalog answers."""


def small_talk(text: str, act: ActGuess | None) -> str | None:
    """``greeting`` or ``thanks`` when the message is only that ("heyy", "cool ty"), else None."""
    if act is None or act.label not in SMALL_TALK or act.confidence < SMALL_TALK_CONFIDENCE:
        return None
    if len(text.split()) > 8 or re.search(r"\d|\$|#", text) or asks_about_assortment(text):
        return None
    return act.label


def route(text: str, intent: str | None, confidence: float = 1.0, act: ActGuess | None = None) -> Route:
    """Pick the route for a message; ``act``: the act classifier's reading of it."""
    if INJECTION.search(text):
        return Route("injection")
    complaint = COMPLAINT.search(text) is not None and ASKS_FOR_PRODUCT.search(text) is None
    if m := ORDER_NUMBER.search(text):
        return Route("complaint" if complaint else "order", order_number=m.group(1).upper())
    if complaint:
        return Route("complaint")
    if ORDER_QUESTION.search(text):
        return Route("order")
    if PRICE_MATCH.search(text):
        return Route("price_match")
    if off_task(text):
        return Route("off_task")
    if ASKS_FOR_HUMAN.search(text):
        return Route("human")
    if (talk := small_talk(text, act)) is not None:
        return Route(talk)
    if confidence < MIN_CONFIDENCE or asks_about_assortment(text):  # "do you sell tents?" is the catalog's
        return Route("product")
    if intent in HUMAN_INTENTS:
        return Route("human")
    if intent in ORDER_INTENTS:
        return Route("order")
    if intent in POLICY_INTENTS and not product_only(text):
        return Route("policy", topic=POLICY_INTENTS[intent])
    return Route("product")


PRICE_MATCH_POLICY: str = Settings.model_fields["price_match_policy"].default
"""The price-match answer where no store setting is at hand (``AISLE_PRICE_MATCH_POLICY`` serves)."""


def server_reply(text: str, products: Sequence[ProductDoc], intent: str | None = None, confidence: float = 1.0,
                 shown: ProductDoc | None = None, price_match: str = PRICE_MATCH_POLICY) -> tuple[str, str] | None:
    """The route and the whole reply of a turn the server answers without the model, or None.

    Args:
        text: the shopper's message.
        products: the turn's listed products (a comparison is answered from them).
        intent: the intent model's label, with its calibrated ``confidence``.
        shown: the product the reply before this message named first ("anything cheaper?" is answered
            against it).
    """
    kind = route(text, intent, confidence).kind
    if kind in SERVER_REPLIES:
        return kind, SERVER_REPLIES[kind]
    if kind == "price_match":
        return catalog_reply(text, products, shown, price_match)
    return catalog_reply(text, products, shown) if kind == "product" else None


def catalog_reply(text: str, products: Sequence[ProductDoc], shown: ProductDoc | None = None,
                  price_match: str | None = None) -> tuple[str, str] | None:
    """A product question the listed products answer by themselves (``price_match`` with the store's policy
    when one is given, ``claim``, ``compare``, ``cheaper``), or None."""
    if price_match is not None:
        return "price_match", price_match_reply(text, products, price_match)
    if (answer := price_claim_reply(text, products)) is not None:
        return "claim", answer
    if (answer := comparison_reply(text, products)) is not None:
        return "compare", answer
    if (answer := cheaper_reply(text, shown, products)) is not None:
        return "cheaper", answer
    return None


SERVICE_TOPIC = re.compile(r"\b(?:deliver\w*|ship\w*|dispatch\w*|return\w*|refund\w*|exchang\w*|cancel\w*|"
                           r"order\w*|track\w*|arriv\w*|policy|policies|fee|fees|postage)\b", re.IGNORECASE)


def product_only(text: str) -> bool:
    """Whether the message sets a price limit or stock wish, or names a colour, and names no service topic
    ("picture frames pls, nothing over $20", "any of them come in white"): a product question, whatever the
    intent model reads in it."""
    return (not parse_filters(text).unconstrained or bool(colours_in(text))) and SERVICE_TOPIC.search(text) is None


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


def complaint_grounding(session: Session, *, user_id: int, number: str | None) -> Grounding:
    """An apology and the order complained about (the named one, else the latest), with its real status; without
    one on the account, a request for the order number. Never a product."""
    g = order_grounding(session, user_id=user_id, number=number)
    if g.facts.startswith("No "):
        return Grounding(g.facts, f"{SORRY}{g.opening}Could you send me the order number from your confirmation "
                                  "email? I'll check it right away.")
    return Grounding(g.facts, f"{SORRY}{g.opening.rstrip()} If it doesn't arrive soon, a colleague can look into "
                              "it for you.")


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
