"""Wire models for both WebSockets: what shoppers (``/ws/chat``) and agents (``/ws/agent``) send, each a
discriminated union, what the server sends, and :func:`parse` that turns a raw frame into one of them or
a :class:`~bot.errors.RequestError` whose code goes back in an ``error`` frame.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from bot.errors import RequestError
from bot.models import Message
from bot.turn_events import ReplyMeta, product_card, shopper_meta
from retrieval.index import ProductIndex


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- shopper -> server


class MessageCreate(_Frame):
    type: Literal["message.create"]
    client_id: str = Field(min_length=1, max_length=64)
    text: str


class FeedbackCreate(_Frame):
    type: Literal["feedback.create"]
    message_id: int
    rating: int = Field(ge=-1, le=1)
    reason: str | None = Field(default=None, max_length=500)


class EventCreate(_Frame):
    type: Literal["event.create"]
    event: Literal["view", "click", "cart"]
    sku: str = Field(min_length=1, max_length=64)


class Resume(_Frame):
    type: Literal["resume"]
    last_seq: int = Field(ge=0)


class HandoffRequest(_Frame):
    type: Literal["handoff.request"]


ShopperFrame = MessageCreate | FeedbackCreate | EventCreate | Resume | HandoffRequest


# ---- agent -> server


class QueueList(_Frame):
    type: Literal["queue.list"]


class _OnConversation(_Frame):
    conversation_id: int = Field(ge=1)


class Watch(_OnConversation):
    type: Literal["conversation.watch"]


class TakeOver(_OnConversation):
    type: Literal["conversation.takeover"]


class Release(_OnConversation):
    type: Literal["conversation.release"]


class Assign(_OnConversation):
    """A supervisor gives the conversation to an agent."""

    type: Literal["conversation.assign"]
    agent_id: int = Field(ge=1)


class DraftCreate(_OnConversation):
    """Ask for a reply draft to the shopper's latest message."""

    type: Literal["draft.create"]


class AgentMessage(_OnConversation):
    type: Literal["message.create"]
    client_id: str = Field(min_length=1, max_length=58)
    text: str = Field(min_length=1, max_length=4000)
    draft_id: int | None = Field(default=None, ge=1, description="The draft this text was edited from.")


AgentFrame = QueueList | Watch | TakeOver | Release | Assign | DraftCreate | AgentMessage


# ---- server -> clients


class SessionReady(_Frame):
    type: Literal["session.ready"] = "session.ready"
    conversation_id: int
    last_seq: int
    state: str = "bot"  # "agent" while a human answers: no model reply is coming


class MessageCreated(_Frame):
    type: Literal["message.created"] = "message.created"
    id: int
    seq: int
    role: str
    text: str
    client_id: str | None = None


class MessageDelta(_Frame):
    type: Literal["message.delta"] = "message.delta"
    id: int
    text: str


class MessageCompleted(_Frame):
    type: Literal["message.completed"] = "message.completed"
    id: int
    seq: int
    text: str
    products: list[dict[str, Any]]
    meta: dict[str, Any]


class AgentJoined(_Frame):
    type: Literal["agent.joined"] = "agent.joined"
    agent: str


class AgentLeft(_Frame):
    type: Literal["agent.left"] = "agent.left"
    agent: str


class ErrorFrame(_Frame):
    type: Literal["error"] = "error"
    code: str
    message: str


class AgentReady(_Frame):
    type: Literal["agent.ready"] = "agent.ready"
    agent_id: int
    name: str
    role: str
    team: list[dict[str, Any]] = Field(default_factory=list, description="Every agent, for a supervisor to assign to.")


class QueueSnapshot(_Frame):
    """The queue as this agent may see it, ranked; pushed again whenever it changes."""

    type: Literal["queue.snapshot"] = "queue.snapshot"
    conversations: list[dict[str, Any]]


class Transcript(_Frame):
    """A conversation as it stands; live ``message.*`` frames with its ``conversation_id`` follow."""

    type: Literal["conversation.transcript"] = "conversation.transcript"
    conversation_id: int
    state: str
    agent_id: int | None
    messages: list[dict[str, Any]]
    context: dict[str, Any] = Field(default_factory=dict, description="Risk, signals, profile, recommendations.")


class DraftStarted(_Frame):
    """A draft is being written: its id and the products it draws on; ``draft.delta`` frames follow."""

    type: Literal["draft.started"] = "draft.started"
    conversation_id: int
    draft_id: int
    products: list[dict[str, Any]]


class DraftDelta(_Frame):
    type: Literal["draft.delta"] = "draft.delta"
    conversation_id: int
    draft_id: int
    text: str


class DraftCreated(_Frame):
    """The finished draft for the agent to edit (its whole text: it replaces what the deltas wrote);
    ``draft_id`` goes back with the text the agent sends."""

    type: Literal["draft.created"] = "draft.created"
    conversation_id: int
    draft_id: int
    text: str
    products: list[dict[str, Any]]
    meta: dict[str, Any]


class StateChanged(_Frame):
    type: Literal["conversation.state"] = "conversation.state"
    conversation_id: int
    state: str
    agent_id: int | None


# ---- parsing


class Inbound:
    """What one socket accepts: a union of frames, told apart by ``type``."""

    def __init__(self, union: Any) -> None:
        self.adapter: TypeAdapter[Any] = TypeAdapter(Annotated[union, Field(discriminator="type")])
        self.types = frozenset(get_args(m.model_fields["type"].annotation)[0] for m in get_args(union))

    def parse(self, raw: str) -> BaseModel:
        """One client frame, validated.

        Raises:
            RequestError: ``bad_frame`` (not a JSON object with a string ``type``), ``unknown_type``, or
                ``invalid_frame`` (naming the first fields that are wrong).
        """
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            raise RequestError("bad_frame", "Frames must be JSON objects.") from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise RequestError("bad_frame", "Frames must be JSON objects with a string 'type'.")
        if data["type"] not in self.types:
            raise RequestError("unknown_type", f"Unknown frame type {data['type'][:40]!r}.")
        try:
            return self.adapter.validate_python(data)  # type: ignore[no-any-return]
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:] or e['loc']))}: {e['msg']}"
                                 for e in exc.errors()[:3])
            raise RequestError("invalid_frame", f"Invalid {data['type']} frame: {problems}") from None


SHOPPER_FRAMES = Inbound(ShopperFrame)
AGENT_FRAMES = Inbound(AgentFrame)


# ---- stored messages as frames


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
    reply = ReplyMeta.stored(msg.meta)
    docs = (index.get(s) for s in (reply.retrieved_skus if reply else []))
    return completed_frame(msg, [product_card(d) for d in docs if d], full=full)
