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


class AgentMessage(_OnConversation):
    type: Literal["message.create"]
    client_id: str = Field(min_length=1, max_length=58)
    text: str = Field(min_length=1, max_length=4000)


AgentClientFrame = Annotated[QueueList | Watch | TakeOver | Release | AgentMessage, Field(discriminator="type")]
AGENT_FRAME: TypeAdapter[Any] = TypeAdapter(AgentClientFrame)


class AgentReady(_Frame):
    type: Literal["agent.ready"] = "agent.ready"
    agent_id: int
    name: str
    role: str


class QueueSnapshot(_Frame):
    type: Literal["queue.snapshot"] = "queue.snapshot"
    conversations: list[dict[str, Any]]


class Transcript(_Frame):
    """A conversation as it stands; live ``message.*`` frames with its ``conversation_id`` follow."""

    type: Literal["conversation.transcript"] = "conversation.transcript"
    conversation_id: int
    state: str
    agent_id: int | None
    messages: list[dict[str, Any]]


class StateChanged(_Frame):
    type: Literal["conversation.state"] = "conversation.state"
    conversation_id: int
    state: str
    agent_id: int | None
