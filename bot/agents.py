"""Support agents: credentials, and who owns a conversation (the queue is ``bot.agent_queue``).

While an agent owns a conversation its state is ``agent``: shopper messages are
stored and acknowledged, and no model reply is generated (see ``bot.dialogue``).
Taking over, releasing and each agent reply are stored as messages, so a
shopper who reloads or resumes sees the whole story in ``seq`` order.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import crud
from bot.conversations import move
from bot.errors import RequestError
from bot.models import Agent, Conversation, ConversationState, Message, Role

ROLES = ("agent", "supervisor")


class OwnershipError(RequestError):
    """The conversation is not this agent's to change; ``code`` goes to the client."""


class LegacyScrypt:
    """Verifies the scrypt hashes stored before argon2 (``scrypt$salt$digest``); never writes new ones.

    A pwdlib hasher: listed after argon2, so a login that matches one of these hashes is re-hashed
    with argon2 (:func:`authenticate`).
    """

    PARAMS = {"n": 2**14, "r": 8, "p": 1}

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        return (hash.decode() if isinstance(hash, bytes) else hash).startswith("scrypt$")

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        salt = salt or secrets.token_bytes(16)
        raw = password.encode() if isinstance(password, str) else password
        return f"scrypt${salt.hex()}${hashlib.scrypt(raw, salt=salt, **self.PARAMS).hex()}"

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        try:
            _, salt, digest = (hash.decode() if isinstance(hash, bytes) else hash).split("$")
            expected = self.hash(password, salt=bytes.fromhex(salt))
        except ValueError:
            return False
        return hmac.compare_digest(expected.rsplit("$", 1)[1], digest)

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        return True


PASSWORDS = PasswordHash((Argon2Hasher(), LegacyScrypt()))
"""argon2id for every new hash (the FastAPI template's choice); old scrypt hashes still verify."""


def hash_password(password: str) -> str:
    return PASSWORDS.hash(password)


def _verify(password: str, stored: str) -> tuple[bool, str | None]:
    """(matches, the upgraded hash when the stored one uses an older scheme)."""
    try:
        return PASSWORDS.verify_and_update(password, stored)
    except UnknownHashError:
        return False, None


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


def team(session: Session) -> list[dict[str, Any]]:
    """Every agent's id, name and role."""
    return [{"id": a.id, "name": a.name, "role": a.role} for a in session.scalars(select(Agent).order_by(Agent.name))]


def authenticate(session: Session, *, name: str, password: str) -> Agent | None:
    agent = session.scalar(select(Agent).where(Agent.name == name))
    if agent is None:
        hash_password(password)  # the same work either way: timing does not tell which names exist
        return None
    ok, upgraded = _verify(password, agent.credential_hash)
    if ok and upgraded:  # an older scheme: store the argon2 hash from now on
        agent.credential_hash = upgraded
        session.flush()
    return agent if ok else None


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
    move(conv, "take_over")
    conv.assigned_agent_id = agent.id
    return crud.add_message(session, conversation_id=conv.id, role=Role.SYSTEM,
                            text=f"{agent.name} joined the chat.", meta={"event": "agent.joined", "agent": agent.name})


def reassign(session: Session, *, conversation_id: int, by_agent_id: int, to_agent_id: int) -> tuple[Message, bool]:
    """A supervisor gives the conversation to an agent; returns the stored notice and whether the
    assistant had it until now (its reply in flight must stop)."""
    by = session.get_one(Agent, by_agent_id)
    if by.role != "supervisor":
        raise OwnershipError("forbidden", "Only a supervisor can reassign a conversation.")
    to = session.get(Agent, to_agent_id)
    if to is None:
        raise OwnershipError("unknown_agent", f"No agent {to_agent_id}.")
    conv = session.get(Conversation, conversation_id, with_for_update=True)
    if conv is None or conv.state == ConversationState.CLOSED:
        raise OwnershipError("unknown_conversation", f"No open conversation {conversation_id}.")
    from_bot = move(conv, "assign") != ConversationState.AGENT
    conv.assigned_agent_id = to.id
    return crud.add_message(session, conversation_id=conv.id, role=Role.SYSTEM, text=f"{to.name} joined the chat.",
                            meta={"event": "agent.joined", "agent": to.name, "assigned_by": by.name}), from_bot


def release(session: Session, *, conversation_id: int, agent_id: int) -> Message:
    """Hand the conversation back to the assistant; returns the stored notice."""
    agent = session.get_one(Agent, agent_id)
    conv = _owned(session, conversation_id, agent)
    move(conv, "release")
    conv.assigned_agent_id, conv.flagged_reason = None, None
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
