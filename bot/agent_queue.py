"""The agents' queue: who needs help, why in words, how long they have waited, and who owns it.

Ranked in one place (:func:`queue`): a shopper's explicit request for a human first, then risk
(churn x P(negative)), then the longest wait. An agent sees the open conversations nobody owns and
their own; a supervisor sees every agent's.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import crud
from bot.conversations import HANDOFF_ASKED
from bot.models import Agent, Conversation, ConversationState, Message, Role, User
from bot.routing import ORDER_NUMBER

_PROBLEMS = (  # what went wrong, in the shopper's words -> the queue's adjective
    (re.compile(r"\b(late|delay(ed)?|still (not|hasn'?t)|never (arrived|came)|not (arrived|here))\b", re.I),
     "late"),
    (re.compile(r"\b(broken|damaged|defect(ive)?|torn|ripped|faulty)\b", re.I), "damaged"),
    (re.compile(r"\bwrong (size|item|colou?r|product|order)\b", re.I), "wrong"),
    (re.compile(r"\bmissing\b", re.I), "missing"),
)
_TOPICS = {  # intent -> what it is about; {order} is the order number the shopper gave, if any
    "track_order": "order", "cancel_order": "cancelling order", "change_order": "changing order",
    "return_item": "a return", "get_refund": "a refund", "track_refund": "a refund",
    "check_refund_policy": "refunds", "payment_issue": "a payment", "check_invoice": "an invoice",
    "get_invoice": "an invoice", "delivery_period": "delivery", "delivery_options": "delivery",
    "change_shipping_address": "the shipping address", "set_up_shipping_address": "the shipping address",
    "complaint": "a complaint", "recover_password": "their account", "registration_problems": "their account",
    "edit_account": "their account", "delete_account": "deleting their account", "product_search": "products",
}


@dataclass(frozen=True, slots=True)
class QueueEntry:
    conversation_id: int
    shopper: str  # a readable handle, never a raw token
    state: str
    risk: dict[str, Any]
    reason: str  # why this conversation may need a human, in words
    handoff_requested: bool
    agent_id: int | None
    agent: str | None  # who owns it
    last_message: str  # the shopper's latest words
    waiting_since: str | None  # the shopper's first message no human has answered yet (ISO time)
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def shopper_handle(external_id: str, name: str | None = None) -> str:
    """The shopper's name when the storefront gave one; else ``anon-3254f0…`` -> ``guest 3254``, and a store's
    own customer id as it is."""
    if name:
        return name
    if external_id.startswith("anon-"):
        return f"guest {external_id[5:9]}"
    return external_id[:40]


def _feeling(sentiment: dict[str, Any] | None) -> str | None:
    if not sentiment or sentiment.get("label") != "negative":
        return None
    return "angry" if (sentiment.get("negative") or 0.0) >= 0.8 else "unhappy"


def _topic(intent: str | None, text: str) -> str | None:
    """"late order A10023", "a refund", "a damaged item"; None when nothing says."""
    order = ORDER_NUMBER.search(text)
    problem = next((word for pattern, word in _PROBLEMS if pattern.search(text)), None)
    topic = _TOPICS.get(intent or "")
    if topic is None or topic.endswith("order"):
        if order:
            topic = f"{topic or 'order'} {order.group(1).upper()}"
        elif topic == "order" or (topic is None and problem in ("late", "missing")):
            topic = "their order"
    if problem is None:
        return topic
    if topic is None:
        return f"a {problem} item"
    return f"{problem} {topic}" if topic.startswith("order") else topic.replace("their order", f"their {problem} order")


def reason_in_words(*, text: str, signals: dict[str, Any] | None, risk: dict[str, Any], flagged: str | None,
                    churn_high: float) -> str:
    """"angry about late order A10023; high churn risk; asked for a human"."""
    signals = signals or {}
    feeling = _feeling(signals.get("sentiment"))
    topic = _topic((signals.get("intent") or {}).get("label"), text)
    parts = []
    if feeling:
        parts.append(f"{feeling} about {topic}" if topic else feeling)
    elif topic:
        parts.append(f"asking about {topic}")
    churn = risk.get("churn")
    if churn is not None and churn >= churn_high:
        parts.append("high churn risk")
    if risk.get("rule") == "negative_streak":
        parts.append("upset several turns in a row")
        if flagged == risk.get("reason"):  # the policy's own words for the same streak: said once
            flagged = None
    if flagged:
        parts.append(HANDOFF_ASKED if flagged.endswith(HANDOFF_ASKED) else flagged)
    return "; ".join(dict.fromkeys(parts)) or "nothing flagged"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


RECENT = 20
"""Messages a row is read from: enough to find the shopper's latest words and the last agent reply."""


def recent_by_conversation(session: Session, conversation_ids: set[int], per: int = RECENT
                           ) -> dict[int, list[Message]]:
    """Each conversation's last ``per`` messages, newest first, in one query (a window over ``seq``)."""
    ranked = select(Message.id, func.row_number().over(
        partition_by=Message.conversation_id, order_by=Message.seq.desc()).label("n")).where(
        Message.conversation_id.in_(conversation_ids)).subquery()
    found: dict[int, list[Message]] = {cid: [] for cid in conversation_ids}
    for m in session.scalars(select(Message).join(ranked, ranked.c.id == Message.id).where(ranked.c.n <= per)
                             .order_by(Message.conversation_id, Message.seq.desc())):
        found[m.conversation_id].append(m)
    return found


def entry(session: Session, conv: Conversation, *, churn_high: float,
          recent: list[Message] | None = None) -> QueueEntry:
    """One conversation's row; ``recent``: its last messages, newest first (read here when not given)."""
    if recent is None:
        recent = crud.recent_messages(session, conversation_id=conv.id, limit=RECENT)[::-1]
    shopper_said = [m for m in recent if m.role == Role.SHOPPER]
    latest: Message | None = shopper_said[0] if shopper_said else None
    waiting: Message | None = None
    for m in recent:  # back to the last word from a human agent
        if m.role == Role.AGENT:
            break
        if m.role == Role.SHOPPER:
            waiting = m
    owner = session.get(Agent, conv.assigned_agent_id) if conv.assigned_agent_id else None
    shopper = session.get_one(User, conv.user_id)
    text = latest.text if latest else ""
    return QueueEntry(
        conversation_id=conv.id, shopper=shopper_handle(shopper.external_id, shopper.name),
        state=conv.state.value, risk=conv.risk or {},
        reason=reason_in_words(text=text, signals=(latest.meta or {}).get("signals") if latest else None,
                               risk=conv.risk or {}, flagged=conv.flagged_reason, churn_high=churn_high),
        handoff_requested=conv.state == ConversationState.AWAITING_AGENT,
        agent_id=conv.assigned_agent_id, agent=owner.name if owner else None, last_message=text[:200],
        waiting_since=_iso(waiting.created_at) if waiting else None, updated_at=_iso(conv.updated_at) or "",
    )


def _rank(e: QueueEntry) -> tuple[bool, float, bool, str]:
    return (not e.handoff_requested, -(e.risk.get("score") or 0.0), e.waiting_since is None, e.waiting_since or "")


def queue(session: Session, *, churn_high: float, limit: int = 50) -> list[QueueEntry]:
    """Open conversations with shopper messages: asked for a human first, then riskiest, then waiting longest."""
    convs = session.scalars(
        select(Conversation).where(Conversation.state != ConversationState.CLOSED, Conversation.last_seq > 0)
        .order_by(Conversation.updated_at.desc()).limit(limit * 4)
    ).all()
    # the rows' shoppers and owners in two queries; entry()'s session.get then finds them in the session
    held = [*session.scalars(select(User).where(User.id.in_({c.user_id for c in convs}))),
            *session.scalars(select(Agent).where(Agent.id.in_({c.assigned_agent_id for c in convs
                                                               if c.assigned_agent_id})))]
    recent = recent_by_conversation(session, {c.id for c in convs})
    rows = sorted((entry(session, c, churn_high=churn_high, recent=recent[c.id]) for c in convs), key=_rank)[:limit]
    del held
    return rows


def visible(e: QueueEntry | dict[str, Any], *, agent_id: int, role: str) -> bool:
    """A supervisor sees everything; an agent sees what nobody owns and their own."""
    owner = e.agent_id if isinstance(e, QueueEntry) else e.get("agent_id")
    return role == "supervisor" or owner in (None, agent_id)
