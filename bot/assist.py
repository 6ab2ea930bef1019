"""Agent assist: reply drafts and the shopper's context, for the support console.

A draft answers the conversation's latest shopper message the way the assistant
would (same retrieval, same prompt, same output checks), but it goes to the
agent, not the shopper: the agent edits it and sends it, and both texts are kept
in the ``drafts`` table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Levenshtein
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import crud
from bot.dialogue import Dialogue
from bot.errors import RequestError
from bot.llm.base import Delta, LLMUnavailable
from bot.mentions import shopper_price
from bot.models import Conversation, Draft, Message, Order, Product, Role
from bot.prompts import Turn
from bot.routing import ANSWERED_BY_SERVER
from bot.turn.state import DialogueState, dialogue_state
from bot.turn_events import ReplyMeta, fallback_text, listing_text, product_card

RECOMMENDED = 4
"""Products recommended in the console's shopper panel."""
SHOWN, ORDERS, PANEL_MESSAGES = 6, 5, 40
"""The panel's products the bot showed, recent orders, and the messages its mood chart reads."""


class AssistError(RequestError):
    """A draft or context request that cannot be served; ``code`` is sent to the console."""


@dataclass(frozen=True, slots=True)
class DraftReserved:
    """The draft's row is reserved and its products chosen; its words follow."""

    id: int
    conversation_id: int
    products: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class DraftText:
    id: int
    text: str


@dataclass(frozen=True, slots=True)
class DraftReply:
    """The finished draft, as stored (it may differ from the streamed words when the guard cut them all)."""

    id: int
    conversation_id: int
    text: str
    products: list[dict[str, Any]]
    meta: dict[str, Any]


DraftEvent = DraftReserved | DraftText | DraftReply


def _latest_question(session: Session, conversation_id: int, history_turns: int
                     ) -> tuple[int, Message, list[Turn], DialogueState]:
    """The shopper's user id, their latest message, the messages before it (oldest first), and the
    conversation's state before it."""
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise AssistError("unknown_conversation", f"No conversation {conversation_id}.")
    rows = [m for m in crud.recent_messages(session, conversation_id=conversation_id, limit=history_turns + 8)
            if m.text and m.role != Role.SYSTEM]
    last = next((i for i in range(len(rows) - 1, -1, -1) if rows[i].role == Role.SHOPPER), None)
    if last is None:
        raise AssistError("nothing_to_draft", "The shopper has not written anything yet.")
    return conv.user_id, rows[last], draft_turns(rows[:last], history_turns), dialogue_state(rows[:last])


def draft_turns(messages: list[Message], turns: int) -> list[Turn]:
    """The earlier turns a draft is written from, oldest first: the last ``turns`` messages with text,
    system notes ("ana joined the chat.") left out. The export rebuilds a sent draft's prompt with it."""
    rows = [m for m in messages if m.text and m.role != Role.SYSTEM][-turns:] if turns > 0 else []
    return [Turn("user" if m.role == Role.SHOPPER else "assistant", m.text) for m in rows]


async def stream_draft(dialogue: Dialogue, *, conversation_id: int, agent_id: int
                       ) -> AsyncGenerator[DraftEvent, None]:
    """Write a reply to the latest shopper message for the agent to edit, streaming its words as the model
    writes them (through the same guard as the bot's replies), and store it as a draft.

    Yields one :class:`DraftReserved`, then :class:`DraftText` pieces, then the stored :class:`DraftReply`.

    Raises:
        AssistError: for an unknown conversation, or one with no shopper message to answer.
    """

    def load() -> tuple[int, Message, list[Turn], DialogueState]:
        with dialogue.factory() as session:
            return _latest_question(session, conversation_id, dialogue.config.history_turns)

    user_id, question, turns, state = await asyncio.to_thread(load)
    text = question.text
    earlier = [t.text for t in turns if t.role == "user"]
    signals = await dialogue.classify(text)
    g = await dialogue.ground(conversation_id=conversation_id, user_id=user_id, text=text, earlier=earlier,
                              intent=signals.intent if signals else None, state=state)
    request, record = dialogue.request_for(g, turns, text, g.opening)
    guard = dialogue.guard_for(g, text, g.opening)
    meta = dialogue.reply_meta(g, request, record, reply_to=question.id)
    draft_id = await asyncio.to_thread(_store_draft, dialogue, None, conversation_id=conversation_id,
                                       agent_id=agent_id, text="", meta=meta.as_json())
    products = [product_card(p) for p in g.products]
    yield DraftReserved(draft_id, conversation_id, products)
    opening = guard.opening(g.opening) if g.opening else ""
    parts = [opening]
    if opening:
        yield DraftText(draft_id, opening)
    try:
        async for item in dialogue.llm.stream(request) if g.route not in ANSWERED_BY_SERVER else _nothing():
            if isinstance(item, Delta) and (released := guard.feed(item.text)):
                parts.append(released)
                yield DraftText(draft_id, released)
        if tail := guard.finish():
            parts.append(tail)
            yield DraftText(draft_id, tail)
        reply = "".join(parts).strip()
        if guard.cut_whole:
            reply = (opening + listing_text(g.products)).strip()
        meta.status = "completed"
    except LLMUnavailable as exc:  # the agent still gets the products to work from
        reply = opening or fallback_text(g.products)
        meta.status, meta.error = "fallback", str(exc)[:300]
    meta.guard, meta.mentions = guard.corrections, guard.mentions
    stored = meta.as_json()
    await asyncio.to_thread(_store_draft, dialogue, draft_id, conversation_id=conversation_id, agent_id=agent_id,
                            text=reply, meta=stored)
    yield DraftReply(draft_id, conversation_id, reply, products, {k: v for k, v in stored.items() if k != "prompt"})


async def _nothing() -> AsyncGenerator[Delta, None]:
    """No model text: the server's opening is the whole reply (:data:`bot.routing.ANSWERED_BY_SERVER`)."""
    return
    yield


async def draft_reply(dialogue: Dialogue, *, conversation_id: int, agent_id: int) -> DraftReply:
    """The finished draft of :func:`stream_draft`, for callers that do not show it as it is written."""
    async for event in stream_draft(dialogue, conversation_id=conversation_id, agent_id=agent_id):
        if isinstance(event, DraftReply):
            return event
    raise AssertionError("a draft stream ends with its reply")


def _store_draft(dialogue: Dialogue, draft_id: int | None, *, conversation_id: int, agent_id: int, text: str,
                 meta: dict[str, Any]) -> int:
    """Reserve a draft row (``draft_id`` None) or fill in the one reserved; returns its id."""
    with dialogue.factory() as session, session.begin():
        row = session.get(Draft, draft_id) if draft_id is not None else None
        if row is None:
            row = Draft(conversation_id=conversation_id, agent_id=agent_id)
            session.add(row)
        row.suggested_text, row.meta = text, dict(meta)
        session.flush()
        return row.id


def shopper_context(dialogue: Dialogue, conversation_id: int) -> dict[str, Any]:
    """What the console shows beside a transcript: risk, latest signals, the mood over the conversation,
    what the conversation is about (its state), the products the bot showed and why, recent orders and
    returns, profile, recommended products.

    Blocking (database and ranking): call it in a worker thread.
    """
    with dialogue.factory() as session:  # closed before the personalizer opens its own
        conv = session.get(Conversation, conversation_id)
        if conv is None:
            raise AssistError("unknown_conversation", f"No conversation {conversation_id}.")
        user_id = conv.user_id
        recent = crud.recent_messages(session, conversation_id=conversation_id, limit=PANEL_MESSAGES)
        scored = [m for m in recent if m.role == Role.SHOPPER and (m.meta or {}).get("signals")]
        context: dict[str, Any] = {
            "risk": conv.risk, "flagged_reason": conv.flagged_reason,
            "signals": scored[-1].meta["signals"] if scored else None,
            "mood": [_mood_point(m) for m in scored if m.meta["signals"].get("sentiment")],
            "shown": _shown(session, recent), "orders": _orders(session, user_id),
            "profile": None, "recommended": [],
        }
        state = dialogue_state(recent)
        context["state"] = {**state.as_meta(), "summary": state.describe(dialogue.search.index.get)}
    personalizer = dialogue.personalizer
    if personalizer is None:
        return context
    profile = personalizer.profile(user_id)
    context["profile"] = {
        "summary": profile.describe(), "events": profile.n_events, "price_band": profile.price_band,
        "categories": [[c, round(share, 3)] for c, share in profile.categories[:3]],
        "brands": [[b, round(share, 3)] for b, share in profile.brands[:3] if b],
    }
    if profile.vector is not None:
        mine = personalizer.recommend(user_id, profile.vector, 0.0, RECOMMENDED, None)
        context["recommended"] = [{**product_card(r.product), "reason": r.reason} for r in mine.recommendations]
    return context


def _mood_point(m: Message) -> dict[str, Any]:
    s = m.meta["signals"]["sentiment"]
    return {"seq": m.seq, "label": s["label"], "negative": round(s["negative"], 3),
            "at": m.created_at.isoformat() if m.created_at else None}


def _shown(session: Session, messages: list[Message]) -> list[dict[str, Any]]:
    """The products the assistant's replies named, newest first, each with why it was shown."""
    why: dict[str, str] = {}
    for m in reversed(messages):
        reply = ReplyMeta.stored(m.meta) if m.role == Role.ASSISTANT else None
        if reply is not None:
            skus, reasons = reply.retrieved_skus, reply.reasons
            for i, sku in enumerate(skus):
                reason = reasons[i] if i < len(reasons) else ""
                why.setdefault(sku, "matched the question" if reason in ("", "relevance") else reason)
    products = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(list(why)[:SHOWN])))}
    return [{"sku": sku, "title": products[sku].title, "price": products[sku].price,
             "currency": products[sku].currency, "price_text": shopper_price(products[sku].price, products[sku].currency),
             "reason": reason}
            for sku, reason in list(why.items())[:SHOWN] if sku in products]


def _orders(session: Session, user_id: int) -> list[dict[str, Any]]:
    """The shopper's latest orders with their status (returns included), newest first."""
    rows = session.scalars(select(Order).where(Order.user_id == user_id)
                           .order_by(Order.created_at.desc()).limit(ORDERS)).all()
    return [{"number": o.number, "status": o.status, "total": o.total, "items": len(o.items or []),
             "created_at": o.created_at.isoformat() if o.created_at else None} for o in rows]


def record_sent(session: Session, *, draft_id: int, conversation_id: int, message: Message) -> None:
    """Keep what the agent actually sent, and the message it went out as, beside the draft it started from."""
    row = session.get(Draft, draft_id)
    if row is None or row.conversation_id != conversation_id:
        raise AssistError("unknown_draft", f"No draft {draft_id} in conversation {conversation_id}.")
    row.sent_text = message.text
    row.message_id = message.id
    row.edit_distance = Levenshtein.distance(row.suggested_text, message.text)
