"""Wire models for the agent WebSocket (``/ws/agent``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


AgentClientFrame = Annotated[QueueList | Watch | TakeOver | Release | Assign | DraftCreate | AgentMessage,
                             Field(discriminator="type")]
AGENT_FRAME: TypeAdapter[Any] = TypeAdapter(AgentClientFrame)


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


class DraftCreated(_Frame):
    """A reply draft for the agent to edit; ``draft_id`` goes back with the text the agent sends."""

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
