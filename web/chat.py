"""The shopper WebSocket (``/ws/chat``): thin transport over :mod:`bot.dialogue` and :mod:`bot.conversations`."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel

from bot import conversations, crud
from bot.dialogue import TurnRejected
from bot.turn_events import MessageSaved, ReplyCompleted, ReplyDelta, ReplyFailed
from web.limits import TokenBucket
from web.protocol import (
    SHOPPER_FRAMES,
    EventCreate,
    FeedbackCreate,
    HandoffRequest,
    MessageCreate,
    MessageDelta,
    Resume,
    SessionReady,
    completed_frame,
    created_frame,
    stored_frame,
)
from web.sockets import TRY_AGAIN_LATER, FrameSocket, admit
from web.state import AppState

log = logging.getLogger("aisle.chat")
router = APIRouter()


class ChatConnection(FrameSocket):
    """One shopper socket: reads frames, runs turns one at a time, writes frames."""

    inbound = SHOPPER_FRAMES

    def __init__(self, ws: WebSocket, state: AppState, opened: conversations.Opened) -> None:
        super().__init__(ws, state)
        self.conversation_id, self.user_id, self.status = opened.conversation_id, opened.user_id, opened.state
        self.label = f"chat of conversation {self.conversation_id}"
        self.seq_sent = opened.last_seq  # the client has (or resumes) everything up to here
        self.turns: asyncio.Queue[MessageCreate] = asyncio.Queue()
        self.current: asyncio.Task[None] | None = None
        self.bucket = TokenBucket(state.settings.messages_per_s, state.settings.message_burst)

    async def send(self, frame: BaseModel) -> None:
        if isinstance(seq := getattr(frame, "seq", None), int):
            self.seq_sent = max(self.seq_sent, seq)
        await super().send(frame)

    async def opened(self) -> None:
        await self.send(SessionReady(conversation_id=self.conversation_id, last_seq=self.seq_sent, state=self.status))
        self.state.hub.join(self.conversation_id, self)

    def closed(self) -> None:
        self.state.hub.leave(self.conversation_id, self)

    def companions(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.run_turns(), name=f"turns-{self.conversation_id}")]

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
        for msg in await self.in_db(crud.messages_after, conversation_id=self.conversation_id, seq=last_seq):
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
                        await self.send(delta := MessageDelta(id=mid, text=text))
                        await self.state.hub.publish(self.conversation_id, delta)  # consoles watch it being written
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

    async def dispatch(self, frame: BaseModel) -> None:
        cid = self.conversation_id
        match frame:
            case MessageCreate(text=text):
                self.state.dialogue.validate(text)  # refused before it costs a token
                if (wait := self.bucket.take()) is not None:  # not stored: the client keeps it and sends it again
                    await self.error("rate_limited", f"Too many messages; send it again in {wait:.1f} s.")
                    return
                self.turns.put_nowait(frame)
            case Resume(last_seq=last_seq):
                await self.replay(last_seq)
            case EventCreate(sku=sku, event=event):
                await asyncio.to_thread(self.state.dialogue.record_behaviour, user_id=self.user_id,
                                        conversation_id=cid, sku=sku, event=event)
            case FeedbackCreate(message_id=message_id, rating=rating, reason=reason):
                await self.in_db(conversations.record_feedback, conversation_id=cid, message_id=message_id,
                                 rating=rating, reason=reason)
            case HandoffRequest():
                if await self.in_db(conversations.request_handoff, conversation_id=cid):
                    self.state.queue.changed()


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
        opened = await asyncio.to_thread(_open, state, claims.shopper_id)
        await ChatConnection(ws, state, opened).serve()
    finally:
        state.connections.close(ip)


def _open(state: AppState, shopper_id: str) -> conversations.Opened:
    with state.factory() as session, session.begin():
        return conversations.open_for_shopper(session, external_id=shopper_id)
