"""What a turn yields (typed events) and what its reply stores about itself (:class:`ReplyMeta`).

The transport turns the events into frames; the reply's metadata is stored as the
message's ``meta`` JSON, and read back through :meth:`ReplyMeta.from_json` by whoever
reads it (the console's panel and transcripts, the chat benchmark, the training export and pairs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from bot.mentions import mention_text, shopper_price
from bot.models import Message
from bot.prompts import PromptRecord, stock_phrase
from retrieval.catalog import ProductDoc

ReplyStatus = Literal["streaming", "completed", "fallback", "interrupted"]


@dataclass(frozen=True, slots=True)
class MessageSaved:
    """A message is committed (the shopper's, or a replayed duplicate)."""

    message: Message
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    message_id: int
    text: str


@dataclass(frozen=True, slots=True)
class ReplyFailed:
    """The model could not answer; a fallback reply follows."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class ReplyCompleted:
    message: Message
    products: list[dict[str, Any]]


TurnEvent = MessageSaved | ReplyDelta | ReplyFailed | ReplyCompleted


@dataclass
class ReplyMeta:
    """One reply's record: what it rested on, what answered, what the guard changed, how long it took."""

    reply_to: int  # the shopper message it answers
    model: str
    backend: str
    adapter: str | None  # the LoRA adapter that answered (None: the base model)
    route: str  # product, order or policy
    retrieved_skus: list[str]
    retrieval_scores: list[float]
    reasons: list[str]
    filters: str  # the shopper's constraints, in words
    prompt: dict[str, Any]  # bot.prompts.PromptRecord.as_meta(): the prompt rebuilds from it
    intent: dict[str, Any] | None = None
    signals: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None
    facts: str | None = None
    profile: str | None = None
    status: ReplyStatus = "streaming"
    guard: list[dict[str, str]] = field(default_factory=list)  # every correction the output guard made
    mentions: list[dict[str, Any]] = field(default_factory=list)  # products the text names: n, sku, rendered text
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    tokens: dict[str, int | None] = field(default_factory=lambda: {"prompt": None, "completion": None})
    finish_reason: str | None = None
    error: str | None = None  # why the model could not answer (status fallback)
    partial_text: str | None = None  # what had streamed before it failed
    partial: bool = False  # cut off when the shopper left (status interrupted)
    act: str | None = None  # what the shopper did (bot/turn/understand.py), when the state resolved it
    focus: list[str] = field(default_factory=list)  # SKUs of the shown products this turn was about
    language: str | None = None  # the shopper's language on this turn (bot/turn/language.py)
    need: str | None = None  # the need a refinement's list answers (the state keeps it: bot/turn/state.py)
    message_act: dict[str, Any] | None = None  # the act classifier's label and confidence (bot/turn/acts.py)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("error", "partial_text"):
            if out[key] is None:
                del out[key]
        if not self.partial:
            del out["partial"]
        return out

    @classmethod
    def from_json(cls, meta: Mapping[str, Any]) -> ReplyMeta:
        """The record :meth:`as_json` stored (keys it does not know are ignored).

        Raises:
            TypeError: when a required key is missing.
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in meta.items() if k in known})

    @classmethod
    def stored(cls, meta: Mapping[str, Any] | None) -> ReplyMeta | None:
        """The record a stored reply or draft carries, or None for a row without one (a notice, a row
        reserved before its record was written)."""
        try:
            return cls.from_json(meta or {})
        except TypeError:
            return None

    def prompt_record(self) -> PromptRecord | None:
        """The prompt this reply was generated from; None when the stored record is unreadable."""
        try:
            return PromptRecord.from_meta(self.prompt)
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class ReplyTally:
    """What the live outcomes count of a stored reply: its arm, whether it fell back, how much the guard cut."""

    adapter: str  # the adapter's name, "base" for the base model
    fallback: bool
    corrections: int

    @classmethod
    def of(cls, meta: Mapping[str, Any] | None) -> ReplyTally:
        """The tally of a stored ``meta`` (a row written before a key existed counts as without it)."""
        meta = meta or {}
        return cls(adapter=str(meta.get("adapter") or "base"), fallback=meta.get("status") == "fallback",
                   corrections=len(meta.get("guard") or []))


SHOPPER_META = ("model", "adapter", "route", "status", "partial", "finish_reason", "tokens", "latency_ms", "mentions")
"""What a shopper's client is told about a reply. The rest (the prompt and its profile, the churn and
sentiment signals, the policy decision, the guard's cuts, errors, raw partial text) is for the
agent console and the logs."""


def shopper_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The shopper-safe part of a stored reply's ``meta``."""
    return {k: meta[k] for k in SHOPPER_META if k in meta} if meta else {}


def product_card(p: ProductDoc) -> dict[str, Any]:
    """What the widget needs to draw a product card."""
    return {
        "sku": p.sku, "title": p.title, "price": p.price, "currency": p.currency,
        "price_text": shopper_price(p.price, p.currency),
        "stock": p.stock, "availability": stock_phrase(p.stock), "category": p.category,
        "brand": p.brand, "image_url": p.image_url,
    }


def listing_text(products: Sequence[ProductDoc]) -> str:
    """The catalog's own words about the products, for a reply the guard had to cut whole."""
    if not products:
        return "I can't help with that here. A human colleague can: press 'talk to a human'."
    names = "; ".join(f"{p.title} ({shopper_price(p.price, p.currency)}, {stock_phrase(p.stock)})" for p in products[:3])
    return f"Here is what matches your request: {names}."


def fallback_text(products: Sequence[ProductDoc]) -> str:
    if not products:
        return "Sorry, I can't answer right now. A human colleague can help you: press 'talk to a human'."
    names = "; ".join(mention_text(p) for p in products[:3])
    return (
        f"Sorry, I can't write a full answer right now. These products match your request: {names}. "
        "A human colleague can help you too."
    )
