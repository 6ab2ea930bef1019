"""Rules driven by the signals: when to offer a human, when a retention gesture may be mentioned.

The thresholds and the coupon live in :class:`PolicyConfig`, filled from
settings (``AISLE_POLICY_*``); the rules only read them. Every decision carries
the scores that caused it, and the dialogue stores it in the reply's metadata
and logs it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.signals import Sentiment

log = logging.getLogger("aisle.policy")

HANDOFF_OFFER = ("I'm sorry about this. A human colleague can take over this conversation: "
                 "press \"talk to a human\" and one will join you. ")


@dataclass(frozen=True)
class PolicyConfig:
    negative_turns: int = field(default=2, metadata={"help": "Negative shopper turns in a row that offer a human."})
    negative_min: float = field(default=0.35, metadata={
        "help": "Floor on P(negative), on top of the classifier's own (threshold-tuned) negative label."})
    churn_high: float = field(default=0.7, metadata={"help": "Churn probability from which risk counts as high."})
    retention_offer: str | None = field(default=None, metadata={
        "help": "The store's retention gesture, with its code, e.g. '10% off your next order with code STAY10'. "
                "None: no gesture."})

    def __post_init__(self) -> None:
        if self.negative_turns < 1:
            raise ValueError("negative_turns must be at least 1")
        if not 0 < self.negative_min <= 1 or not 0 < self.churn_high <= 1:
            raise ValueError("negative_min and churn_high must be in (0, 1]")


@dataclass(frozen=True)
class Decision:
    """What the policy decided for one turn, and why."""

    handoff: bool = False
    retention: str | None = None
    rule: str | None = None
    reason: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)

    def as_meta(self) -> dict[str, Any]:
        return asdict(self)


class Policy:
    """Applies the configured rules to one turn's signals."""

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config

    def is_negative(self, s: Sentiment | None) -> bool:
        return s is not None and s.label == "negative" and s.negative >= self.config.negative_min

    def decide(self, *, sentiment: Sentiment | None, earlier: Sequence[Sentiment | None],
               churn: float | None) -> Decision:
        """Decide for this turn.

        Args:
            sentiment: this message's sentiment.
            earlier: the sentiments of the shopper's earlier messages, most recent first.
            churn: the shopper's churn probability, if known.
        """
        c = self.config
        run = [sentiment, *earlier][: c.negative_turns]
        scores = {"churn": churn, "negative": sentiment.negative if sentiment else None,
                  "earlier_negative": [s.negative if s else None for s in earlier[: c.negative_turns - 1]]}
        high_risk = churn is not None and churn >= c.churn_high
        if len(run) == c.negative_turns and all(self.is_negative(s) for s in run):
            decision = Decision(True, None, "negative_streak",
                                f"negative sentiment on {c.negative_turns} turns in a row", scores)
        elif high_risk and self.is_negative(sentiment):
            decision = Decision(True, None, "churn_and_negative",
                                f"high churn risk ({churn:.2f}) and negative sentiment", scores)
        elif high_risk and c.retention_offer:
            decision = Decision(False, c.retention_offer, "retention", f"high churn risk ({churn:.2f}), calm chat",
                                scores)
        else:
            return Decision(scores=scores)
        log.info("policy decision %s: %s (scores %s)", decision.rule, decision.reason, scores)
        return decision
