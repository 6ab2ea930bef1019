"""Phrasing a reply: the server's opening, then the model's words through the guard, as events; the reply as
stored when the stream ends, is cut off, or fails (the fallback still names the products)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.llm.base import Delta, GenerationRequest, LLMBackend, LLMUnavailable, Usage
from bot.llm.gate import DispatchGate, Ticket
from bot.models import Message
from bot.reply_text import ReplyText
from bot.routing import ANSWERED_BY_SERVER
from bot.turn.decide import Grounded
from bot.turn_events import (
    ReplyCompleted,
    ReplyDelta,
    ReplyMeta,
    TurnEvent,
    fallback_text,
    listing_text,
    product_card,
)

SaveReply = Callable[[int, str, dict[str, Any]], Message]
"""Stores a reply's text and record by its message id."""


class Clock:
    """Milliseconds since the turn began, by stage."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.latency: dict[str, float | None] = {}

    def now(self) -> float:
        return round((time.perf_counter() - self.t0) * 1000, 1)

    def mark(self, stage: str) -> None:
        self.latency[stage] = self.now()

    def first(self, stage: str) -> None:
        """Mark ``stage`` unless it already has its time."""
        if self.latency.get(stage) is None:
            self.mark(stage)


@dataclass
class Prepared:
    """A turn ready to stream: its grounding, the server's opening, the request, the reply's record."""

    g: Grounded
    opening: str
    request: GenerationRequest
    meta: ReplyMeta
    reserved: asyncio.Future[Message]
    guard: ReplyText
    clock: Clock


@dataclass
class Streamed:
    """What the stream stage produced."""

    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    failure: LLMUnavailable | None = None


async def stream_reply(llm: LLMBackend, gate: DispatchGate, save: SaveReply, turn: Prepared, ticket: Ticket,
                       out: Streamed) -> AsyncGenerator[TurnEvent, None]:
    """The server's opening, then the model's text through the guard; a reply cut off is saved as such."""
    latency, guard = turn.clock.latency, turn.guard
    stream = llm.stream(turn.request)  # nothing is sent before the first item is asked for
    try:
        waited = await gate.ready(ticket)
        latency.update(dispatch_wait=round(waited * 1000, 1), before_llm=turn.clock.now(), first_token=None,
                       first_words=None)
        if turn.opening:  # the server's own words first: an offer of a human, the real order status or policy
            shown = guard.opening(turn.opening)
            out.parts.append(shown)
            turn.clock.first("first_token")
            turn.clock.first("first_words")
            yield ReplyDelta((await turn.reserved).id, shown)
        if turn.g.route in ANSWERED_BY_SERVER:
            out.usage = Usage(0, 0, "answered_by_server", llm.model_name)
            return
        async for item in stream:
            if isinstance(item, Delta):
                turn.clock.first("first_token")
                if safe := guard.feed(item.text):
                    out.parts.append(safe)
                    turn.clock.first("first_words")  # the first text the guard lets out
                    yield ReplyDelta((await turn.reserved).id, safe)
            else:
                out.usage = item
        tail = guard.finish()
        if not turn.opening and guard.cut_whole:
            tail = listing_text(turn.g.products)  # the guard cut every clause: the catalog speaks instead
        if tail:
            out.parts.append(tail)
            turn.clock.first("first_words")
            yield ReplyDelta((await turn.reserved).id, tail)
    except LLMUnavailable as exc:
        out.failure = exc
    finally:  # the consumer may have gone away (or the task been cancelled) at any point above
        turn.meta.guard, turn.meta.mentions = guard.corrections, guard.mentions
        await stream.aclose()
        reply = await turn.reserved
        if out.usage is None and out.failure is None:
            turn.meta.status, turn.meta.partial = "interrupted", True
            await asyncio.to_thread(save, reply.id, "".join(out.parts), turn.meta.as_json())

async def finish_reply(save: SaveReply, turn: Prepared, out: Streamed) -> ReplyCompleted:
    """The reply as stored: the model's text, or a fallback that still names the products."""
    meta, usage = turn.meta, out.usage
    if out.failure is not None:
        reply_text = (turn.opening + "A human colleague can help you too." if turn.opening
                      else fallback_text(turn.g.products))
        meta.status, meta.error, meta.partial_text = "fallback", str(out.failure)[:500], "".join(out.parts)
    else:
        reply_text = "".join(out.parts).strip()
        meta.status = "completed"
    turn.clock.mark("total")
    if usage is not None:
        meta.adapter = usage.adapter  # what answered (a swap may have just happened)
        meta.tokens = {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
        meta.finish_reason = usage.finish_reason
    reply = await turn.reserved
    saved = await asyncio.to_thread(save, reply.id, reply_text, meta.as_json())
    return ReplyCompleted(saved, [product_card(p) for p in turn.g.products])
