"""Support agents: login, the console page and the agent WebSocket (``/ws/agent``).

An agent sees the queue sorted by risk, watches or takes over a conversation,
writes to the shopper and releases it. Taking over stops the assistant's reply
in flight (its vLLM request is aborted) and no model reply follows until release.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from bot import agents, crud
from bot.assist import (
    DraftReply,
    DraftReserved,
    DraftText,
    record_sent,
    shopper_context,
    stream_draft,
)
from bot.models import Conversation, Message
from web.api import STATIC
from web.auth import AgentClaims
from web.deps import StateDep
from web.protocol import (
    AGENT_FRAMES,
    AgentJoined,
    AgentLeft,
    AgentMessage,
    AgentReady,
    Assign,
    DraftCreate,
    DraftCreated,
    DraftDelta,
    DraftStarted,
    QueueList,
    Release,
    StateChanged,
    TakeOver,
    Transcript,
    Watch,
    created_frame,
)
from web.sockets import FrameSocket, admit
from web.state import AppState

log = logging.getLogger("aisle.agent")
router = APIRouter()


class LoginRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


class LoginResponse(BaseModel):
    token: str
    agent_id: int
    name: str
    role: str
    expires_in: int


@router.post("/api/agent/login", responses={401: {"description": "Wrong name or password"},
                                             429: {"description": "Too many attempts from this address"}})
async def login(state: StateDep, request: Request, body: LoginRequest) -> LoginResponse:
    """An agent's console token (it carries the agent's role)."""
    if (wait := state.connections.session_allowed(request.client.host if request.client else "unknown")) is not None:
        raise HTTPException(429, f"Too many attempts; try again in {wait:.0f} s.",
                            headers={"Retry-After": str(max(1, round(wait)))})

    def check() -> tuple[int, str, str] | None:
        with state.factory() as session, session.begin():  # a login may upgrade an older password hash
            agent = agents.authenticate(session, name=body.name, password=body.password)
            return (agent.id, agent.name, agent.role) if agent else None

    found = await asyncio.to_thread(check)
    if found is None:
        raise HTTPException(401, "Wrong name or password.")
    return LoginResponse(token=state.agent_signer.issue(*found), agent_id=found[0], name=found[1], role=found[2],
                         expires_in=state.settings.agent_session_ttl_s)


@router.get("/console", include_in_schema=False)
async def console() -> FileResponse:
    return FileResponse(STATIC / "console.html")


def message_dict(msg: Message) -> dict[str, Any]:
    return {"id": msg.id, "seq": msg.seq, "role": msg.role.value, "text": msg.text, "meta": msg.meta or {},
            "created_at": msg.created_at.isoformat() if msg.created_at else None}


class AgentConnection(FrameSocket):
    """One agent socket."""

    inbound = AGENT_FRAMES

    def __init__(self, ws: WebSocket, state: AppState, claims: AgentClaims) -> None:
        super().__init__(ws, state)
        self.agent = claims
        self.agent_id, self.role = claims.agent_id, claims.role  # what the queue feed filters on
        self.label = f"agent socket of {claims.name}"

    async def relay(self, conversation_id: int, frame: BaseModel) -> None:
        """A conversation's frame, tagged with the conversation it belongs to."""
        await self.outbox.put(json.dumps({**frame.model_dump(mode="json"), "conversation_id": conversation_id}))

    async def opened(self) -> None:
        team = await self.in_db(agents.team) if self.role == "supervisor" else []
        await self.send(AgentReady(agent_id=self.agent_id, name=self.agent.name, role=self.role, team=team))
        await self.state.queue.attend(self)  # the queue now, then again whenever it changes

    def closed(self) -> None:
        self.state.hub.unwatch_all(self)
        self.state.queue.leave(self)

    async def _transcript_frame(self, conversation_id: int) -> Transcript:
        frame: Transcript = await self.in_db(self._transcript, conversation_id=conversation_id)
        frame.context = await asyncio.to_thread(shopper_context, self.state.dialogue, conversation_id)
        return frame

    async def _draft(self, conversation_id: int) -> None:
        """Write a draft in the background, streamed to this console: it stays responsive meanwhile."""
        stream = stream_draft(self.state.dialogue, conversation_id=conversation_id, agent_id=self.agent_id)
        try:
            async for event in stream:
                match event:
                    case DraftReserved(id=did, products=products):
                        await self.send(DraftStarted(conversation_id=conversation_id, draft_id=did,
                                                     products=products))
                    case DraftText(id=did, text=text):
                        await self.send(DraftDelta(conversation_id=conversation_id, draft_id=did, text=text))
                    case DraftReply(id=did, text=text, products=products, meta=meta):
                        await self.send(DraftCreated(conversation_id=conversation_id, draft_id=did, text=text,
                                                     products=products, meta=meta))
        finally:
            await stream.aclose()

    @staticmethod
    def _reply(session: Session, *, conversation_id: int, agent_id: int, text: str, client_id: str,
               draft_id: int | None) -> tuple[Message, bool]:
        msg, resent = agents.agent_reply(session, conversation_id=conversation_id, agent_id=agent_id, text=text,
                                         client_id=client_id)
        if draft_id is not None and not resent:
            record_sent(session, draft_id=draft_id, conversation_id=conversation_id, message=msg)
        return msg, resent

    async def dispatch(self, frame: BaseModel) -> None:
        cid = getattr(frame, "conversation_id", 0)
        match frame:
            case QueueList():
                await self.send(self.state.queue.snapshot(await asyncio.to_thread(self.state.queue.entries), self))
            case Watch():
                self.state.hub.watch(cid, self)
                await self.send(await self._transcript_frame(cid))
            case TakeOver():
                await self._take_over(cid)
            case Assign(agent_id=to):
                await self._assign(cid, to)
            case Release():
                await self._release(cid)
            case DraftCreate():
                self.spawn(self._draft(cid), name=f"draft-{cid}")
            case AgentMessage(text=text, client_id=client_id, draft_id=draft_id):
                await self._write(cid, text, client_id, draft_id)

    async def _take_over(self, cid: int) -> None:
        hub = self.state.hub
        notice = await self.in_db(agents.take_over, conversation_id=cid, agent_id=self.agent_id)
        hub.watch(cid, self)
        if notice is not None:  # None: it was already this agent's
            await hub.interrupt(cid, then=AgentJoined(agent=self.agent.name))  # aborts the reply in flight
            await hub.publish(cid, created_frame(notice))
            self.state.queue.changed()
        await self.send(await self._transcript_frame(cid))

    async def _assign(self, cid: int, to: int) -> None:
        hub = self.state.hub
        notice, from_bot = await self.in_db(agents.reassign, conversation_id=cid, by_agent_id=self.agent_id,
                                            to_agent_id=to)
        joined = AgentJoined(agent=notice.meta["agent"])
        if from_bot:
            await hub.interrupt(cid, then=joined)
        else:
            await hub.deliver(cid, created_frame(notice))
            await hub.deliver(cid, joined)
        await hub.publish(cid, created_frame(notice))
        await hub.publish(cid, StateChanged(conversation_id=cid, state="agent", agent_id=to))
        self.state.queue.changed()

    async def _release(self, cid: int) -> None:
        hub = self.state.hub
        notice = await self.in_db(agents.release, conversation_id=cid, agent_id=self.agent_id)
        hub.watch(cid, self)  # an assigned agent may not have opened it: the state change is theirs too
        await hub.deliver(cid, created_frame(notice))
        await hub.deliver(cid, AgentLeft(agent=self.agent.name))
        await hub.publish(cid, created_frame(notice))
        await hub.publish(cid, StateChanged(conversation_id=cid, state="bot", agent_id=None))
        self.state.queue.changed()

    async def _write(self, cid: int, text: str, client_id: str, draft_id: int | None) -> None:
        msg, resent = await self.in_db(self._reply, conversation_id=cid, agent_id=self.agent_id, text=text,
                                       client_id=client_id, draft_id=draft_id)
        if resent:  # the original acknowledgement only
            await self.relay(cid, created_frame(msg))
            return
        await self.state.hub.deliver(cid, created_frame(msg))
        await self.state.hub.publish(cid, created_frame(msg))
        self.state.queue.changed()

    @staticmethod
    def _transcript(session: Session, *, conversation_id: int) -> Transcript:
        conv = session.get(Conversation, conversation_id)
        if conv is None:
            raise agents.OwnershipError("unknown_conversation", f"No conversation {conversation_id}.")
        rows = crud.messages_after(session, conversation_id=conversation_id, seq=0)
        return Transcript(conversation_id=conv.id, state=conv.state.value, agent_id=conv.assigned_agent_id,
                          messages=[message_dict(m) for m in rows])


@router.websocket("/ws/agent")
async def agent_socket(ws: WebSocket) -> None:
    state: AppState = ws.app.state.aisle
    # the console is served by this app: only its own origin (or a non-browser client) may connect
    if (claims := await admit(ws, [], state.agent_signer.verify)) is None:
        return
    await AgentConnection(ws, state, claims).serve()
