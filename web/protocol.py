"""Wire models for the shopper WebSocket: one discriminated union each way."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


ClientFrame = Annotated[
    MessageCreate | FeedbackCreate | EventCreate | Resume | HandoffRequest, Field(discriminator="type")
]
CLIENT_FRAME: TypeAdapter[Any] = TypeAdapter(ClientFrame)
KNOWN_TYPES = frozenset({"message.create", "feedback.create", "event.create", "resume", "handoff.request"})


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


ServerFrame = (SessionReady | MessageCreated | MessageDelta | MessageCompleted | AgentJoined | AgentLeft
               | ErrorFrame)
