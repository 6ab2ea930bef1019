"""Support agents: credentials, the risk-sorted queue, and who owns a conversation.

While an agent owns a conversation its state is ``agent``: shopper messages are
stored and acknowledged, and no model reply is generated (see ``bot.dialogue``).
Taking over, releasing and each agent reply are stored as messages, so a
shopper who reloads or resumes sees the whole story in ``seq`` order.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import crud
from bot.models import Agent, Conversation, ConversationState, Message, Role, User

ROLES = ("agent", "supervisor")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class OwnershipError(ValueError):
    """The conversation is not this agent's to change; ``code`` goes to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


def add_agent(session: Session, *, name: str, password: str, role: str = "agent") -> Agent:
    """Create an agent, or set the password and role of an existing one."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < 4:
        raise ValueError("the password needs at least 4 characters")
    agent = session.scalar(select(Agent).where(Agent.name == name))
    if agent is None:
        agent = Agent(name=name)
        session.add(agent)
    agent.role, agent.credential_hash = role, hash_password(password)
    session.flush()
    return agent


def authenticate(session: Session, *, name: str, password: str) -> Agent | None:
    agent = session.scalar(select(Agent).where(Agent.name == name))
    if agent is None:
        hash_password(password)  # the same work either way: timing does not tell which names exist
        return None
    return agent if password_matches(password, agent.credential_hash) else None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    conversation_id: int
    shopper: str
    state: str
    risk: dict[str, Any]
    flagged_reason: str | None
    agent_id: int | None
    last_message: str
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id, "shopper": self.shopper, "state": self.state,
            "risk": self.risk, "flagged_reason": self.flagged_reason, "agent_id": self.agent_id,
            "last_message": self.last_message, "updated_at": self.updated_at,
        }


def queue(session: Session, *, limit: int = 50) -> list[QueueEntry]:
    """Open conversations, riskiest first (churn x P(negative)); flagged ones before the rest at equal risk."""
    convs = session.scalars(
        select(Conversation).where(Conversation.state != ConversationState.CLOSED, Conversation.last_seq > 0)
        .order_by(Conversation.updated_at.desc()).limit(limit * 4)
    ).all()
    entries = []
    for conv in convs:
        last = crud.recent_messages(session, conversation_id=conv.id, limit=1)
        entries.append(QueueEntry(
            conversation_id=conv.id, shopper=session.get_one(User, conv.user_id).external_id,
            state=conv.state.value, risk=conv.risk or {}, flagged_reason=conv.flagged_reason,
            agent_id=conv.assigned_agent_id, last_message=(last[0].text[:200] if last else ""),
            updated_at=conv.updated_at.isoformat() if conv.updated_at else "",
        ))
    entries.sort(key=lambda e: (-(e.risk.get("score") or 0.0), e.flagged_reason is None))
    return entries[:limit]


def _owned(session: Session, conversation_id: int, agent: Agent) -> Conversation:
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise OwnershipError("unknown_conversation", f"No conversation {conversation_id}.")
    if conv.state != ConversationState.AGENT or conv.assigned_agent_id != agent.id:
        raise OwnershipError("not_yours", "Take the conversation over before writing in it or releasing it.")
    return conv


def take_over(session: Session, *, conversation_id: int, agent_id: int) -> Message | None:
    """Give the conversation to the agent; returns the stored notice (None if it was already theirs).
    Refused if another agent has it."""
    agent = session.get_one(Agent, agent_id)
    conv = session.get(Conversation, conversation_id, with_for_update=True)
    if conv is None or conv.state == ConversationState.CLOSED:
        raise OwnershipError("unknown_conversation", f"No open conversation {conversation_id}.")
    if conv.state == ConversationState.AGENT and conv.assigned_agent_id not in (None, agent.id):
        raise OwnershipError("already_taken", "Another agent has this conversation.")
    if conv.state == ConversationState.AGENT:
        return None
    conv.state, conv.assigned_agent_id = ConversationState.AGENT, agent.id
    return crud.add_message(session, conversation_id=conv.id, role=Role.SYSTEM,
                            text=f"{agent.name} joined the chat.", meta={"event": "agent.joined", "agent": agent.name})


def release(session: Session, *, conversation_id: int, agent_id: int) -> Message:
    """Hand the conversation back to the assistant; returns the stored notice."""
    agent = session.get_one(Agent, agent_id)
    conv = _owned(session, conversation_id, agent)
    conv.state, conv.assigned_agent_id = ConversationState.BOT, None
    conv.flagged_reason = None
    return crud.add_message(session, conversation_id=conv.id, role=Role.SYSTEM,
                            text=f"{agent.name} left the chat; the assistant is back.",
                            meta={"event": "agent.left", "agent": agent.name})


def agent_reply(session: Session, *, conversation_id: int, agent_id: int, text: str,
                client_id: str) -> tuple[Message, bool]:
    """Store the agent's message (once per ``client_id``); returns it and whether it was a resend."""
    agent = session.get_one(Agent, agent_id)
    _owned(session, conversation_id, agent)
    client_id = f"agent:{client_id}"  # agents' ids never meet the widget's
    if old := crud.find_by_client_id(session, conversation_id=conversation_id, client_id=client_id):
        if old.role != Role.AGENT:
            raise OwnershipError("duplicate_client_id", "That client_id is taken in this conversation.")
        return old, True
    return crud.add_message(session, conversation_id=conversation_id, role=Role.AGENT, text=text,
                            client_id=client_id, meta={"agent": agent.name}), False
