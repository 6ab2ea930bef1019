"""Live outcomes per adapter, from the logs: thumbs-up rate, handoff rate, guard corrections per reply and
fallbacks, each with a 95% confidence interval, so that two arms can be compared honestly.

A reply counts for the adapter named in its ``meta.adapter`` (``base``: no adapter); a conversation
counts for the adapter it started on (``conversations.adapter``). Conversations of erased shoppers
count through the anonymous ``conversations.outcome`` they keep.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Conversation, Feedback, Message, Role
from bot.turn_events import ReplyTally

Z95 = 1.959964


def wilson(successes: int, n: int) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95%); None without observations."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def mean_interval(total: float, squares: float, n: int) -> tuple[float, float] | None:
    """A normal 95% interval of a mean from its sum and sum of squares; None without observations."""
    if n <= 0:
        return None
    mean = total / n
    var = max(0.0, squares / n - mean * mean) * (n / (n - 1) if n > 1 else 1.0)
    half = Z95 * math.sqrt(var / n)
    return round(max(0.0, mean - half), 4), round(mean + half, 4)


@dataclass
class ArmCounts:
    replies: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    fallbacks: int = 0
    corrections: int = 0
    corrections_sq: int = 0
    conversations: int = 0
    handoffs: int = 0
    erased_conversations: int = 0

    def add_reply(self, *, up: int, down: int, fallback: bool, corrections: int) -> None:
        self.replies += 1
        self.thumbs_up += up
        self.thumbs_down += down
        self.fallbacks += int(fallback)
        self.corrections += corrections
        self.corrections_sq += corrections * corrections

    def figures(self) -> dict[str, Any]:
        rated = self.thumbs_up + self.thumbs_down
        return {
            "replies": self.replies, "conversations": self.conversations,
            "thumbs_up_rate": round(self.thumbs_up / rated, 4) if rated else None, "rated": rated,
            "thumbs_up_ci": wilson(self.thumbs_up, rated),
            "handoff_rate": round(self.handoffs / self.conversations, 4) if self.conversations else None,
            "handoff_ci": wilson(self.handoffs, self.conversations),
            "corrections_per_reply": round(self.corrections / self.replies, 4) if self.replies else None,
            "corrections_ci": mean_interval(self.corrections, self.corrections_sq, self.replies),
            "fallback_rate": round(self.fallbacks / self.replies, 4) if self.replies else None,
            "fallback_ci": wilson(self.fallbacks, self.replies),
            "erased_conversations": self.erased_conversations,
        }


def adapter_outcomes(session: Session, *, since: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Figures per adapter name (``base`` for the base model), over conversations started since ``since``."""
    arms: defaultdict[str, ArmCounts] = defaultdict(ArmCounts)
    convs = select(Conversation.id, Conversation.adapter, Conversation.flagged_reason, Conversation.outcome)
    if since is not None:
        convs = convs.where(Conversation.created_at >= since)
    conv_rows = session.execute(convs).all()
    recent = Conversation.created_at >= since if since is not None else Conversation.id.is_not(None)
    votes: defaultdict[int, list[int]] = defaultdict(list)  # erased conversations have no messages left
    for message_id, rating in session.execute(
            select(Feedback.message_id, Feedback.rating).join(Message, Message.id == Feedback.message_id)
            .join(Conversation, Conversation.id == Message.conversation_id).where(recent)):
        votes[message_id].append(rating)
    agent_convs: set[int] = set()
    for mid, cid, role, meta in session.execute(
            select(Message.id, Message.conversation_id, Message.role, Message.meta)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(recent, Message.role.in_((Role.ASSISTANT, Role.AGENT)))
            .execution_options(yield_per=2000)):
        if role == Role.AGENT:
            agent_convs.add(cid)
            continue
        tally, v = ReplyTally.of(meta), votes.get(mid, [])
        arms[tally.adapter].add_reply(up=sum(x > 0 for x in v), down=sum(x < 0 for x in v), fallback=tally.fallback,
                                      corrections=tally.corrections)
    for cid, adapter, flagged, outcome in conv_rows:
        arm = arms[str(adapter or "base")]
        arm.conversations += 1
        if outcome is None:
            arm.handoffs += int(cid in agent_convs or flagged is not None)
            continue
        arm.erased_conversations += 1  # the shopper was forgotten: their anonymous counts
        arm.handoffs += int(bool(outcome.get("handoff")))
        for name, c in (outcome.get("by_adapter") or {}).items():
            kept = arms[name]
            kept.replies += c.get("replies", 0)
            kept.thumbs_up += c.get("thumbs_up", 0)
            kept.thumbs_down += c.get("thumbs_down", 0)
            kept.fallbacks += c.get("fallbacks", 0)
            kept.corrections += c.get("guard_corrections", 0)
            kept.corrections_sq += c.get("guard_corrections", 0) ** 2  # per conversation: a conservative bound
    return {name: arm.figures() for name, arm in sorted(arms.items()) if arm.replies or arm.conversations}
