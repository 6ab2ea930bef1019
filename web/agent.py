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

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketState

from bot import agents, crud
from bot.assist import AssistError, draft_reply, record_sent, shopper_context
from bot.models import Conversation, Message
from web.agent_protocol import (
    AGENT_FRAME,
    AgentMessage,
    AgentReady,
    Assign,
    DraftCreate,
    DraftCreated,
    QueueList,
    Release,
    StateChanged,
    TakeOver,
    Transcript,
    Watch,
)
from web.api import STATIC
from web.auth import AgentClaims
from web.chat import TRY_AGAIN_LATER, admit, close_quietly, created_frame
from web.connections import Outbox, SlowReader
from web.deps import StateDep
from web.protocol import AgentJoined, AgentLeft, ErrorFrame
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


class AgentConnection:
    """One agent socket."""

    def __init__(self, ws: WebSocket, state: AppState, claims: AgentClaims) -> None:
        self.state = state
        self.agent = claims
        self.agent_id, self.role = claims.agent_id, claims.role  # what the queue feed filters on
        self.outbox = Outbox(ws.send_text, state.settings.outbox_frames, state.settings.outbox_wait_s)
        self.drafting: set[asyncio.Task[None]] = set()  # drafts being written; cancelled with the socket

    async def send(self, frame: BaseModel) -> None:
        await self.outbox.put(frame.model_dump_json())

    async def relay(self, conversation_id: int, frame: BaseModel) -> None:
        """A conversation's frame, tagged with the conversation it belongs to."""
        await self.outbox.put(json.dumps({**frame.model_dump(mode="json"), "conversation_id": conversation_id}))

    async def error(self, code: str, message: str) -> None:
        await self.send(ErrorFrame(code=code, message=message))

    def _db(self, fn: Any, /, **kwargs: Any) -> Any:
        with self.state.factory() as session, session.begin():
            return fn(session, **kwargs)

    async def handle(self, raw: str) -> None:
        try:
            frame = AGENT_FRAME.validate_python(json.loads(raw))
        except (json.JSONDecodeError, ValidationError) as exc:
            detail = str(exc).splitlines()[0][:200] if isinstance(exc, json.JSONDecodeError) else "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            await self.error("invalid_frame", f"Invalid frame: {detail}")
            return
        try:
            await self._dispatch(frame)
        except (agents.OwnershipError, AssistError) as exc:
            await self.error(exc.code, str(exc))

    async def _transcript_frame(self, conversation_id: int) -> Transcript:
        frame: Transcript = await asyncio.to_thread(self._db, self._transcript, conversation_id=conversation_id)
        frame.context = await asyncio.to_thread(shopper_context, self.state.dialogue, conversation_id)
        return frame

    async def _draft(self, conversation_id: int) -> None:
        """Write a draft in the background: the console stays responsive while the model answers."""
        try:
            d = await draft_reply(self.state.dialogue, conversation_id=conversation_id,
                                  agent_id=self.agent.agent_id)
        except AssistError as exc:
            await self.error(exc.code, str(exc))
            return
        await self.send(DraftCreated(conversation_id=d.conversation_id, draft_id=d.id, text=d.text,
                                     products=d.products, meta=d.meta))

    @staticmethod
    def _reply(session: Session, *, conversation_id: int, agent_id: int, text: str, client_id: str,
               draft_id: int | None) -> tuple[Message, bool]:
        msg, resent = agents.agent_reply(session, conversation_id=conversation_id, agent_id=agent_id, text=text,
                                         client_id=client_id)
        if draft_id is not None and not resent:
            record_sent(session, draft_id=draft_id, conversation_id=conversation_id, message=msg)
        return msg, resent

    async def _dispatch(self, frame: BaseModel) -> None:
        hub, cid = self.state.hub, getattr(frame, "conversation_id", 0)
        match frame:
            case QueueList():
                await self.send(self.state.queue.snapshot(await asyncio.to_thread(self.state.queue.entries), self))
            case Watch():
                hub.watch(cid, self)
                await self.send(await self._transcript_frame(cid))
            case TakeOver():
                notice = await asyncio.to_thread(self._db, agents.take_over, conversation_id=cid,
                                                 agent_id=self.agent.agent_id)
                hub.watch(cid, self)
                if notice is not None:  # None: it was already this agent's
                    await hub.interrupt(cid, then=AgentJoined(agent=self.agent.name))  # aborts the reply in flight
                    await hub.publish(cid, created_frame(notice))
                    self.state.queue.changed()
                await self.send(await self._transcript_frame(cid))
            case Assign(agent_id=to):
                notice, from_bot = await asyncio.to_thread(self._db, agents.reassign, conversation_id=cid,
                                                           by_agent_id=self.agent.agent_id, to_agent_id=to)
                joined = AgentJoined(agent=notice.meta["agent"])
                if from_bot:
                    await hub.interrupt(cid, then=joined)
                else:
                    await hub.deliver(cid, created_frame(notice))
                    await hub.deliver(cid, joined)
                await hub.publish(cid, created_frame(notice))
                await hub.publish(cid, StateChanged(conversation_id=cid, state="agent", agent_id=to))
                self.state.queue.changed()
            case Release():
                notice = await asyncio.to_thread(self._db, agents.release, conversation_id=cid,
                                                 agent_id=self.agent.agent_id)
                hub.watch(cid, self)  # an assigned agent may not have opened it: the state change is theirs too
                await hub.deliver(cid, created_frame(notice))
                await hub.deliver(cid, AgentLeft(agent=self.agent.name))
                await hub.publish(cid, created_frame(notice))
                await hub.publish(cid, StateChanged(conversation_id=cid, state="bot", agent_id=None))
                self.state.queue.changed()
            case DraftCreate():
                task = asyncio.create_task(self._draft(cid), name=f"draft-{cid}")
                self.drafting.add(task)
                task.add_done_callback(self.drafting.discard)
            case AgentMessage(text=text, client_id=client_id, draft_id=draft_id):
                msg, resent = await asyncio.to_thread(self._db, self._reply, conversation_id=cid,
                                                      agent_id=self.agent.agent_id, text=text, client_id=client_id,
                                                      draft_id=draft_id)
                if resent:  # the original acknowledgement only
                    await self.relay(cid, created_frame(msg))
                    return
                await hub.deliver(cid, created_frame(msg))
                await hub.publish(cid, created_frame(msg))
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
    conn = AgentConnection(ws, state, claims)
    writer = asyncio.create_task(conn.outbox.run(), name=f"agent-outbox-{claims.agent_id}")
    close_code, close_reason = 1000, ""
    try:
        team = await asyncio.to_thread(conn._db, agents.team) if claims.role == "supervisor" else []
        await conn.send(AgentReady(agent_id=claims.agent_id, name=claims.name, role=claims.role, team=team))
        await state.queue.attend(conn)  # the queue now, then again whenever it changes
        while True:
            receive = asyncio.ensure_future(ws.receive())
            done, _ = await asyncio.wait({receive, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer in done:
                receive.cancel()
                if (crash := writer.exception()) is not None:
                    raise crash
                return
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None or len(raw.encode()) > state.settings.max_frame_bytes:
                await conn.error("bad_frame", "Send JSON text frames under the size limit.")
                continue
            await conn.handle(raw)
    except SlowReader:
        close_code, close_reason = TRY_AGAIN_LATER, "console too slow; reconnect"
    except (WebSocketDisconnect, OSError):
        return
    except Exception:
        log.exception("agent socket of %s failed", claims.name)
        close_code = 1011
    finally:
        state.hub.unwatch_all(conn)
        state.queue.leave(conn)
        for task in (*conn.drafting, writer):
            task.cancel()
        await asyncio.gather(writer, *conn.drafting, return_exceptions=True)
        if ws.client_state == WebSocketState.CONNECTED:
            await close_quietly(ws, close_code, close_reason)
