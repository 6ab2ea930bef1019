from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from bot.shopper_history import (
    CHURN_FEATURES,
    LOOKBACK_FEATURES,
    RFM_FEATURES,
    HistoryEvent,
    churn_features,
    lookback,
    orders,
    render,
    rfm,
    rhythm,
)

NOW = datetime(2026, 6, 1)


def test_rfm_counts_orders_once_and_ignores_the_future() -> None:
    events = [HistoryEvent(NOW - timedelta(days=30), "purchase", "Mug", 10.0, "A1"),
              HistoryEvent(NOW - timedelta(days=30), "purchase", "Plate", 5.0, "A1"),
              HistoryEvent(NOW - timedelta(days=3), "purchase", "Bowl", 7.0, "A2"),
              HistoryEvent(NOW + timedelta(days=3), "purchase", "Later", 99.0, "A3")]
    assert orders(events[:3]) == 2
    assert rfm(events, NOW) == pytest.approx([math.log1p(3), math.log1p(2), math.log1p(22)])
    assert rfm([], NOW) == pytest.approx([math.log1p(365), 0, 0])


def test_rhythm_measures_silence_against_the_shoppers_own_gap() -> None:
    weekly = [HistoryEvent(NOW - timedelta(days=d), "purchase", "Coffee", 9.0, f"W{d}") for d in (51, 44, 37, 30)]
    quarterly = [HistoryEvent(NOW - timedelta(days=d), "purchase", "Boots", 90.0, f"Q{d}") for d in (300, 210, 120, 30)]
    tenure, overdue, gap = rhythm(weekly, NOW)
    assert (tenure, gap) == pytest.approx((math.log1p(51), math.log1p(7)))
    assert overdue == pytest.approx(math.log1p(30 / 8))  # 30 silent days are almost four missed weeks
    assert rhythm(quarterly, NOW)[1] == pytest.approx(math.log1p(30 / 91))  # and a third of a quarter
    once = [HistoryEvent(NOW - timedelta(days=20), "purchase", "Mug", 5.0, "A1")]
    assert rhythm(once, NOW) == pytest.approx([math.log1p(20), math.log1p(20 / 51), math.log1p(50)])


def test_lookback_features_ignore_history_older_than_the_window() -> None:
    recent = [HistoryEvent(NOW - timedelta(days=d), "purchase", "Tea", 10.0, f"T{d}") for d in (40, 20, 5)]
    recent.append(HistoryEvent(NOW - timedelta(days=12), "return", "Tea", 10.0))
    old = [HistoryEvent(NOW - timedelta(days=d), "purchase", "Pot", 500.0, f"P{d}") for d in (200, 150, 90)]
    values = lookback(recent + old, NOW)
    assert len(values) == len(LOOKBACK_FEATURES)
    assert values == pytest.approx(lookback(recent, NOW))  # a longer past changes nothing
    recency, n, spent, days30, returns, gap, overdue = values
    assert (recency, n, spent) == pytest.approx((math.log1p(5), math.log1p(3), math.log1p(30)))
    assert (days30, returns, gap) == pytest.approx((math.log1p(2), math.log1p(1), math.log1p(17.5)))
    assert overdue == pytest.approx(math.log1p(5 / 18.5))
    lapsed = lookback(old, NOW)  # nothing in the window: recency still counts, the rest is empty
    assert lapsed[0] == pytest.approx(math.log1p(90)) and lapsed[1:5] == [0.0, 0.0, 0.0, 0.0]


def test_churn_features_follow_the_names_a_model_directory_lists() -> None:
    events = [HistoryEvent(NOW - timedelta(days=9), "purchase", "Mug", 5.0, "A1")]
    assert churn_features(events, NOW, RFM_FEATURES) == rfm(events, NOW)  # a model trained on RFM alone
    assert churn_features(events, NOW) == rfm(events, NOW) + rhythm(events, NOW)
    assert len(churn_features(events, NOW)) == len(CHURN_FEATURES)
    with pytest.raises(ValueError, match="unknown churn features"):
        churn_features(events, NOW, ["log_spent"])


def test_render_is_most_recent_first_and_mentions_complaints_returns_and_reviews() -> None:
    events = [HistoryEvent(NOW - timedelta(days=40), "purchase", "Rain Jacket", 80.0, "A1"),
              HistoryEvent(NOW - timedelta(days=20), "return", "Rain Jacket", 80.0),
              HistoryEvent(NOW - timedelta(days=10), "review", "Rain Jacket", 2.0),
              HistoryEvent(NOW - timedelta(days=1), "complaint", "my refund never arrived")]
    text = render(events, NOW)
    assert text.startswith("Shopper for 40 days. Last purchase 40 days ago; 1 orders, spent 80.")
    assert text.index("complained") < text.index("reviewed") < text.index("returned") < text.index("bought")
    assert '"my refund never arrived"' in text and "2/5" in text
    assert render([], NOW) == "New shopper, no history."


def test_unknown_event_kinds_are_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        HistoryEvent(NOW, "wishlist")
