from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from bot.shopper_history import HistoryEvent, orders, render, rfm

NOW = datetime(2026, 6, 1)


def test_rfm_counts_orders_once_and_ignores_the_future() -> None:
    events = [HistoryEvent(NOW - timedelta(days=30), "purchase", "Mug", 10.0, "A1"),
              HistoryEvent(NOW - timedelta(days=30), "purchase", "Plate", 5.0, "A1"),
              HistoryEvent(NOW - timedelta(days=3), "purchase", "Bowl", 7.0, "A2"),
              HistoryEvent(NOW + timedelta(days=3), "purchase", "Later", 99.0, "A3")]
    assert orders(events[:3]) == 2
    assert rfm(events, NOW) == pytest.approx([math.log1p(3), math.log1p(2), math.log1p(22)])
    assert rfm([], NOW) == pytest.approx([math.log1p(365), 0, 0])


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
