"""Chat records: shoppers, conversations and messages. Functions take keyword-only arguments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models import Agent, Conversation, ConversationState, Message, Role, User


def get_or_create_user(session: Session, *, external_id: str) -> User:
    """Return the shopper with this external id, creating it on first sight."""
    user = session.scalar(select(User).where(User.external_id == external_id))
    if user is None:
        user = User(external_id=external_id)
        session.add(user)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:  # created concurrently
            user = session.scalars(select(User).where(User.external_id == external_id)).one()
    return user


def open_conversation(session: Session, *, user: User, channel: str = "widget") -> Conversation:
    """The shopper's newest open conversation, or a new one."""
    conv = session.scalar(
        select(Conversation)
        .where(Conversation.user_id == user.id, Conversation.state != ConversationState.CLOSED)
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    if conv is None:
        conv = Conversation(user_id=user.id, channel=channel)
        session.add(conv)
        session.flush()
    return conv


def next_seq(session: Session, *, conversation_id: int) -> int:
    """Reserve the conversation's next sequence number (an atomic increment)."""
    seq = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(last_seq=Conversation.last_seq + 1)
        .returning(Conversation.last_seq)
    ).scalar_one()
    return int(seq)


def add_message(
    session: Session,
    *,
    conversation_id: int,
    role: Role,
    text: str,
    client_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Message:
    """Append a message with the next ``seq``; the caller commits."""
    msg = Message(
        conversation_id=conversation_id,
        seq=next_seq(session, conversation_id=conversation_id),
        role=role,
        text=text,
        client_id=client_id,
        meta=meta or {},
    )
    session.add(msg)
    session.flush()
    return msg


def find_by_client_id(session: Session, *, conversation_id: int, client_id: str) -> Message | None:
    return session.scalar(
        select(Message).where(Message.conversation_id == conversation_id, Message.client_id == client_id)
    )


def recent_messages(session: Session, *, conversation_id: int, limit: int) -> list[Message]:
    """The last ``limit`` messages in order, oldest first."""
    rows = session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.seq.desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))


def messages_after(session: Session, *, conversation_id: int, seq: int) -> list[Message]:
    return list(
        session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.seq > seq)
            .order_by(Message.seq)
        )
    )


def known_names(session: Session) -> list[str]:
    """Every person's name the store holds: its shoppers' (as the storefront gave them) and its agents'."""
    shoppers = session.scalars(select(User.name).where(User.name.is_not(None), User.name != ""))
    return [*shoppers, *session.scalars(select(Agent.name))]
