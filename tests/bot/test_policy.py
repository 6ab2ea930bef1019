from __future__ import annotations

import logging

import pytest

from bot.policy import Policy, PolicyConfig
from bot.signals import Sentiment

ANGRY = Sentiment("negative", 0.9, 0.9)
CALM = Sentiment("neutral", 0.7, 0.1)
OFFER = "10% off your next order with code STAY10"


def test_two_negative_turns_in_a_row_offer_a_human_with_the_scores(caplog: pytest.LogCaptureFixture) -> None:
    policy = Policy(PolicyConfig(retention_offer=OFFER))
    assert not policy.decide(sentiment=ANGRY, earlier=[], churn=0.1).handoff
    assert not policy.decide(sentiment=ANGRY, earlier=[CALM, ANGRY], churn=0.1).handoff
    with caplog.at_level(logging.INFO, logger="aisle.policy"):
        d = policy.decide(sentiment=ANGRY, earlier=[ANGRY, CALM], churn=0.1)
    assert d.handoff and d.rule == "negative_streak" and "2 turns in a row" in (d.reason or "")
    assert d.scores == {"churn": 0.1, "negative": 0.9, "earlier_negative": [0.9]}
    assert "negative_streak" in caplog.text and "0.9" in caplog.text


def test_high_churn_with_negative_sentiment_offers_a_human_at_once() -> None:
    d = Policy(PolicyConfig()).decide(sentiment=ANGRY, earlier=[], churn=0.85)
    assert d.handoff and d.rule == "churn_and_negative" and "0.85" in (d.reason or "")


def test_high_churn_on_a_calm_chat_allows_only_the_configured_gesture() -> None:
    d = Policy(PolicyConfig(retention_offer=OFFER)).decide(sentiment=CALM, earlier=[], churn=0.8)
    assert not d.handoff and d.retention == OFFER and d.rule == "retention"
    none = Policy(PolicyConfig(retention_offer=None)).decide(sentiment=CALM, earlier=[], churn=0.8)
    assert none.retention is None and none.rule is None


def test_thresholds_come_from_the_configuration() -> None:
    strict = Policy(PolicyConfig(negative_turns=3, churn_high=0.95, negative_min=0.95))
    assert not strict.decide(sentiment=ANGRY, earlier=[ANGRY], churn=0.9).handoff
    assert not strict.decide(sentiment=ANGRY, earlier=[ANGRY, ANGRY], churn=0.9).handoff  # P(neg) 0.9 < 0.95
    loud = Sentiment("negative", 0.99, 0.99)
    assert strict.decide(sentiment=loud, earlier=[loud, loud], churn=None).handoff
    with pytest.raises(ValueError):
        PolicyConfig(negative_turns=0)
    with pytest.raises(ValueError):
        PolicyConfig(churn_high=1.5)


def test_calm_low_risk_turns_change_nothing() -> None:
    d = Policy(PolicyConfig(retention_offer=OFFER)).decide(sentiment=CALM, earlier=[CALM], churn=0.2)
    assert not d.handoff and d.retention is None and d.rule is None and d.scores["churn"] == 0.2
