"""``aisle shoppers forget ID``: erase a shopper, keep only anonymous counts.

Deleted: every message of their conversations (with its ratings and the agents' drafts), their
behaviour events, reviews and orders, and their external id. Kept: each conversation's row,
closed, with an anonymous ``outcome`` (replies, ratings, fallbacks, guard corrections, handoff,
per adapter) so that outcome figures per adapter still add up; and the user row as an empty
tombstone (``forgotten_at`` set, no consent), which no export reads. Every adapter whose
training data held one of those conversations is flagged for retraining (``retrain_reason``).

A running app keeps at most a cached churn score (a number, by user id) for the tombstone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.errors import RequestError
from bot.models import (
    Adapter,
    Conversation,
    ConversationState,
    Draft,
    Event,
    Feedback,
    Message,
    Order,
    Review,
    Role,
    User,
)
from bot.turn_events import ReplyTally


@dataclass(frozen=True)
class Forgotten:
    user_id: int
    conversations: int
    messages: int
    events: int
    reviews: int
    orders: int
    adapters_flagged: list[str]


def find_shopper(session: Session, shopper: str) -> User:
    """A shopper by the store's id for them (``users.external_id``), or by ``users.id``."""
    user = session.scalar(select(User).where(User.external_id == shopper))
    if user is None and shopper.isdigit():
        user = session.get(User, int(shopper))
    if user is None or user.forgotten_at is not None:
        raise RequestError("unknown_shopper", f"No shopper {shopper!r} (by external id or user id).")
    return user


def outcome(messages: list[Message], ratings: dict[int, list[int]], conv: Conversation) -> dict[str, Any]:
    """Anonymous counts of one conversation, overall and per adapter."""
    by_adapter: dict[str, Counter[str]] = {}
    for m in messages:
        if m.role != Role.ASSISTANT:
            continue
        tally = ReplyTally.of(m.meta)
        counts = by_adapter.setdefault(tally.adapter, Counter())
        votes = ratings.get(m.id, [])
        counts.update(replies=1, thumbs_up=sum(v > 0 for v in votes), thumbs_down=sum(v < 0 for v in votes),
                      fallbacks=int(tally.fallback), guard_corrections=tally.corrections)
    roles = Counter(m.role.value for m in messages)
    return {"messages": dict(roles), "handoff": bool(roles.get(Role.AGENT.value)) or conv.flagged_reason is not None,
            "by_adapter": {name: dict(c) for name, c in by_adapter.items()}}


def forget(session: Session, *, shopper: str, now: datetime | None = None) -> Forgotten:
    """Erase the shopper (see the module doc); the caller commits.

    Raises:
        RequestError: ``unknown_shopper`` when no such shopper is on record (nothing changes).
    """
    now = now or datetime.now(UTC)
    user = find_shopper(session, shopper)
    conversations = list(session.scalars(select(Conversation).where(Conversation.user_id == user.id)))
    conv_ids = [c.id for c in conversations]
    messages = list(session.scalars(select(Message).where(Message.conversation_id.in_(conv_ids))))
    message_ids = [m.id for m in messages]
    ratings: dict[int, list[int]] = {}
    for message_id, rating in session.execute(select(Feedback.message_id, Feedback.rating)
                                              .where(Feedback.message_id.in_(message_ids))):
        ratings.setdefault(message_id, []).append(rating)
    for conv in conversations:
        conv.outcome = outcome([m for m in messages if m.conversation_id == conv.id], ratings, conv)
        conv.state, conv.assigned_agent_id, conv.flagged_reason = ConversationState.CLOSED, None, None
    session.execute(delete(Draft).where(Draft.conversation_id.in_(conv_ids)))
    session.execute(delete(Feedback).where(Feedback.message_id.in_(message_ids)))
    session.execute(delete(Message).where(Message.id.in_(message_ids)))
    counts = {}
    for table in (Event, Review, Order):
        counts[table.__tablename__] = session.scalar(select(func.count()).where(table.user_id == user.id)) or 0
        session.execute(delete(table).where(table.user_id == user.id))
    user.external_id, user.locale, user.name = f"forgotten-{user.id}", "", None
    user.consent_personalization = user.consent_training = False
    user.forgotten_at = now
    flagged = flag_adapters(session, conv_ids, now)
    session.flush()
    return Forgotten(user.id, len(conversations), len(messages), counts["events"], counts["reviews"],
                     counts["orders"], flagged)


def trained_on(manifest: dict[str, Any]) -> set[str]:
    """The conversation groups (``conversation:ID``) an adapter's export manifest used, on any side."""
    groups = manifest.get("groups") or {}
    return {g for side in ("train", "eval") for g in groups.get(side, [])} | set(manifest.get("pair_groups", []))


def flag_adapters(session: Session, conversation_ids: list[int], now: datetime) -> list[str]:
    """Flag every adapter trained or evaluated on these conversations; returns their names."""
    wanted = {f"conversation:{cid}" for cid in conversation_ids}
    flagged = []
    for adapter in session.scalars(select(Adapter).order_by(Adapter.id)):
        if hit := trained_on(adapter.dataset_manifest or {}) & wanted:
            note = f"{now:%Y-%m-%d}: trained on {len(hit)} conversation(s) of an erased shopper"
            adapter.retrain_reason = f"{adapter.retrain_reason}; {note}" if adapter.retrain_reason else note
            flagged.append(adapter.name)
    return flagged
