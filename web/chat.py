"""The shopper WebSocket (``/ws/chat``): thin transport over :mod:`bot.dialogue`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketState

from bot import crud
from bot.agent_queue import HANDOFF_ASKED
from bot.dialogue import (
    MessageSaved,
    ReplyCompleted,
    ReplyDelta,
    ReplyFailed,
    TurnRejected,
    product_card,
)
from bot.models import Conversation, ConversationState, Event, EventType, Feedback, Message, Product
from bot.turn_events import shopper_meta
from retrieval.index import ProductIndex
from web.auth import TokenError
from web.connections import Outbox, SlowReader
from web.limits import TokenBucket, origin_allowed
from web.protocol import (
    CLIENT_FRAME,
    KNOWN_TYPES,
    ErrorFrame,
    EventCreate,
    FeedbackCreate,
    HandoffRequest,
    MessageCompleted,
    MessageCreate,
    MessageCreated,
    MessageDelta,
    Resume,
    SessionReady,
)
from web.state import AppState

log = logging.getLogger("aisle.chat")
router = APIRouter()
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013
C = TypeVar("C")


def created_frame(msg: Message) -> MessageCreated:
    return MessageCreated(id=msg.id, seq=msg.seq, role=msg.role.value, text=msg.text, client_id=msg.client_id)


def completed_frame(msg: Message, products: list[dict[str, Any]], *, full: bool = False) -> MessageCompleted:
    """A finished reply: with its full ``meta`` for agent consoles, else only the shopper's part of it."""
    meta = (msg.meta or {}) if full else shopper_meta(msg.meta)
    return MessageCompleted(id=msg.id, seq=msg.seq, text=msg.text, products=products, meta=meta)


def stored_frame(index: ProductIndex, msg: Message, *, full: bool = False) -> MessageCreated | MessageCompleted:
    """A stored message as a frame: a reply with its product cards (``full``: its whole record, for agents)."""
    if msg.role.value != "assistant":
        return created_frame(msg)
    docs = (index.get(s) for s in (msg.meta or {}).get("retrieved_skus", []))
    return completed_frame(msg, [product_card(d) for d in docs if d], full=full)


class ChatConnection:
    """One shopper socket: reads frames, runs turns one at a time, writes frames."""

    def __init__(self, ws: WebSocket, state: AppState, conversation_id: int, user_id: int, last_seq: int) -> None:
        self.ws = ws
        self.state = state
        self.conversation_id = conversation_id
        self.user_id = user_id
        self.seq_sent = last_seq  # the client has (or resumes) everything up to here
        self.turns: asyncio.Queue[MessageCreate] = asyncio.Queue()
        self.current: asyncio.Task[None] | None = None
        self.bucket = TokenBucket(state.settings.messages_per_s, state.settings.message_burst)
        self.outbox = Outbox(ws.send_text, state.settings.outbox_frames, state.settings.outbox_wait_s)

    async def send(self, frame: BaseModel) -> None:
        """Queue a frame; raises :class:`SlowReader` when the client has stopped reading."""
        if isinstance(seq := getattr(frame, "seq", None), int):
            self.seq_sent = max(self.seq_sent, seq)
        await self.outbox.put(frame.model_dump_json())

    async def error(self, code: str, message: str) -> None:
        await self.send(ErrorFrame(code=code, message=message))

    async def run_turns(self) -> None:
        while True:
            frame = await self.turns.get()
            self.current = task = asyncio.create_task(self.run_turn(frame), name=f"turn-{self.conversation_id}")
            try:
                await asyncio.wait({task})  # an agent's takeover cancels the turn, not this loop
            finally:
                self.current = None
                if not task.done():  # this loop itself is being cancelled: the socket is closing
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)  # the turn stores its partial reply
            if task.cancelled():
                continue
            if isinstance(exc := task.exception(), TurnRejected):
                await self.error(exc.code, str(exc))
            elif exc is not None:
                raise exc

    async def interrupt(self, then: BaseModel | None) -> None:
        """Stop the running turn (its upstream request is aborted), then send what this client has not seen."""
        if (task := self.current) is not None:
            task.cancel()
            await asyncio.wait({task})
        await self.replay(self.seq_sent)
        if then is not None:
            await self.send(then)

    async def replay(self, last_seq: int) -> None:
        """Every stored message after ``last_seq``, as frames (a reply with its product cards)."""
        for msg in await asyncio.to_thread(self._db, self._missed, last_seq):
            await self.send(stored_frame(self.state.index, msg))

    async def run_turn(self, frame: MessageCreate) -> None:
        async with self.state.connections.generation(self.conversation_id):  # one at a time, across sockets
            await self._stream_turn(frame)

    async def _stream_turn(self, frame: MessageCreate) -> None:
        turn = self.state.dialogue.run_turn(
            conversation_id=self.conversation_id, text=frame.text, client_id=frame.client_id)
        scored = False  # the message's scores and the conversation's risk are stored before the first words
        try:
            async for event in turn:
                match event:
                    case MessageSaved(message=msg):
                        await self.send(ack := created_frame(msg))
                        await self.state.hub.publish(self.conversation_id, ack)
                        self.state.queue.changed()
                    case ReplyDelta(message_id=mid, text=text):
                        await self.send(MessageDelta(id=mid, text=text))
                        if not scored:
                            scored = True
                            self.state.queue.changed()
                    case ReplyFailed(code=code, detail=detail):
                        log.warning("turn failed in conversation %s: %s", self.conversation_id, detail)
                        await self.error(code, "The assistant is unavailable; here is what we found.")
                    case ReplyCompleted(message=msg, products=products):
                        await self.send(completed_frame(msg, products))
                        await self.state.hub.publish(self.conversation_id, completed_frame(msg, products, full=True))
                        self.state.queue.changed()
        finally:
            await turn.aclose()

    def _db(self, fn: Any, *args: Any) -> Any:
        with self.state.factory() as session, session.begin():
            return fn(session, *args)

    async def handle(self, raw: str) -> None:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            await self.error("bad_frame", "Frames must be JSON objects.")
            return
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            await self.error("bad_frame", "Frames must be JSON objects with a string 'type'.")
            return
        if data["type"] not in KNOWN_TYPES:
            await self.error("unknown_type", f"Unknown frame type {data['type'][:40]!r}.")
            return
        if data["type"] == "message.create" and isinstance(data.get("text"), str):
            limit = self.state.settings.max_message_chars
            if len(data["text"]) > limit:
                await self.error("message_too_long",
                                 f"The message has {len(data['text'])} characters; the limit is {limit}.")
                return
        try:
            frame = CLIENT_FRAME.validate_python(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            await self.error("invalid_frame", f"Invalid {data['type']} frame: {problems}")
            return
        match frame:
            case MessageCreate():
                if not frame.text.strip():
                    await self.error("empty_message", "The message is empty.")
                    return
                wait = self.bucket.take()
                if wait is not None:  # not stored: the client keeps it and sends it again
                    await self.error("rate_limited", f"Too many messages; send it again in {wait:.1f} s.")
                    return
                self.turns.put_nowait(frame)
            case Resume(last_seq=last_seq):
                await self.replay(last_seq)
            case EventCreate():
                ok = await asyncio.to_thread(self._db, self._record_event, frame)
                if not ok:
                    await self.error("unknown_sku", f"Unknown SKU {frame.sku!r}.")
                    return
                if self.state.dialogue.churn is not None:  # new behaviour: the cached risk is stale
                    self.state.dialogue.churn.invalidate(self.user_id)
                if self.state.dialogue.personalizer is not None:
                    self.state.dialogue.personalizer.feedback(frame.sku, frame.event)
            case FeedbackCreate():
                ok = await asyncio.to_thread(self._db, self._record_feedback, frame)
                if not ok:
                    await self.error("unknown_message", "No such message in this conversation.")
            case HandoffRequest():
                await asyncio.to_thread(self._db, self._request_handoff)
                self.state.queue.changed()

    def _missed(self, session: Session, last_seq: int) -> list[Message]:
        return crud.messages_after(session, conversation_id=self.conversation_id, seq=last_seq)

    def _record_event(self, session: Session, frame: EventCreate) -> bool:
        product = session.query(Product).filter_by(sku=frame.sku).one_or_none()
        if product is None:
            return False
        session.add(Event(user_id=self.user_id, product_id=product.id, type=EventType(frame.event),
                          session=f"conv-{self.conversation_id}"))
        return True

    def _record_feedback(self, session: Session, frame: FeedbackCreate) -> bool:
        msg = session.get(Message, frame.message_id)
        if msg is None or msg.conversation_id != self.conversation_id:
            return False
        session.add(Feedback(message_id=msg.id, rating=frame.rating, reason=frame.reason))
        return True

    def _request_handoff(self, session: Session) -> None:
        conv = session.get_one(Conversation, self.conversation_id)
        if conv.state == ConversationState.BOT:
            conv.state = ConversationState.AWAITING_AGENT
            conv.flagged_reason = HANDOFF_ASKED


def _open(state: AppState, shopper_id: str) -> tuple[int, int, int, str]:
    with state.factory() as session, session.begin():
        user = crud.get_or_create_user(session, external_id=shopper_id)
        conv = crud.open_conversation(session, user=user)
        return conv.id, user.id, conv.last_seq, conv.state.value


async def admit(ws: WebSocket, origins: list[str], verify: Callable[[str | None], C]) -> C | None:
    """Check the upgrade's Origin and token, then accept; None (the socket refused, 403) when either fails."""
    if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), origins):
        await ws.close(code=POLICY_VIOLATION, reason="origin not allowed")
        return None
    try:
        claims = verify(ws.query_params.get("token"))
    except TokenError as exc:
        await ws.close(code=POLICY_VIOLATION, reason=str(exc))
        return None
    await ws.accept()
    return claims


@router.websocket("/ws/chat")
async def chat_socket(ws: WebSocket) -> None:
    state: AppState = ws.app.state.aisle
    if (claims := await admit(ws, state.settings.allowed_origins, state.signer.verify)) is None:
        return
    ip = ws.client.host if ws.client else "unknown"
    if not state.connections.open(ip):
        await ws.close(code=TRY_AGAIN_LATER, reason="too many open chats from this address")
        return
    try:
        await _serve_socket(ws, state, claims.shopper_id)
    finally:
        state.connections.close(ip)


async def _serve_socket(ws: WebSocket, state: AppState, shopper_id: str) -> None:
    conversation_id, user_id, last_seq, conv_state = await asyncio.to_thread(_open, state, shopper_id)
    conn = ChatConnection(ws, state, conversation_id, user_id, last_seq)
    await conn.send(SessionReady(conversation_id=conversation_id, last_seq=last_seq, state=conv_state))
    worker = asyncio.create_task(conn.run_turns(), name=f"turns-{conversation_id}")
    writer = asyncio.create_task(conn.outbox.run(), name=f"outbox-{conversation_id}")
    state.hub.join(conversation_id, conn)
    close_code, close_reason = 1000, ""
    try:
        while True:
            receive = asyncio.ensure_future(ws.receive())
            done, _ = await asyncio.wait({receive, worker, writer}, return_when=asyncio.FIRST_COMPLETED)
            if worker in done or writer in done:
                receive.cancel()
                crash = (worker if worker in done else writer).exception()
                if crash is not None:
                    raise crash
                return
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                await conn.error("bad_frame", "Binary frames are not supported; send JSON text.")
                continue
            if len(raw.encode()) > state.settings.max_frame_bytes:
                close_code = MESSAGE_TOO_BIG
                close_reason = f"frame over {state.settings.max_frame_bytes} bytes"
                return
            await conn.handle(raw)
    except SlowReader as exc:
        log.warning("shedding a slow reader in conversation %s: %s", conversation_id, exc)
        close_code, close_reason = TRY_AGAIN_LATER, "client too slow; reconnect and resume"
    except (WebSocketDisconnect, OSError):
        return
    except Exception:
        log.exception("socket task of conversation %s failed", conversation_id)
        close_code = 1011
    finally:
        state.hub.leave(conversation_id, conn)
        for task in (worker, writer):
            task.cancel()
        await asyncio.gather(worker, writer, return_exceptions=True)
        if ws.client_state == WebSocketState.CONNECTED:
            await close_quietly(ws, close_code, close_reason)


async def close_quietly(ws: WebSocket, code: int, reason: str) -> None:
    # the peer may be gone or not reading; the transport is torn down with the handler either way
    with contextlib.suppress(TimeoutError, RuntimeError, OSError):
        await asyncio.wait_for(ws.close(code=code, reason=reason), 5)
