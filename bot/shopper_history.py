"""A shopper's history as the churn model reads it: recency/frequency/monetary features and a short text.

Training (Online Retail, demo store) and inference (the live database) build
the same :class:`HistoryEvent` lists, so the model sees one format.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

RFM_FEATURES = ("log_recency_days", "log_orders", "log_spent")
RHYTHM_FEATURES = ("log_tenure_days", "log_overdue", "log_mean_gap_days")
CHURN_FEATURES = RFM_FEATURES + RHYTHM_FEATURES
"""What the churn model reads beside the text: RFM, and the shopper's own purchase rhythm."""
LOOKBACK_DAYS = 60
LOOKBACK_FEATURES = ("log_recency_days", "log_orders_60d", "log_spent_60d", "log_purchase_days_30d",
                     "log_returns_60d", "log_mean_gap_60d", "log_overdue_60d")
"""Features over a fixed look-back window: they mean the same however long the history is."""
KINDS = ("purchase", "return", "review", "view", "cart", "complaint")
VERBS = {"purchase": "bought", "view": "viewed", "cart": "added to cart"}


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    at: datetime
    kind: str
    title: str = ""
    value: float = 0.0  # money for purchases and returns, stars for reviews
    order: str = ""  # order or invoice number; purchases on one order count once

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


def _days(delta_s: float) -> float:
    return max(0.0, delta_s / 86400)


def orders(events: Sequence[HistoryEvent]) -> int:
    """Distinct orders among the purchases (by order number, else by day)."""
    return len({e.order or e.at.date().isoformat() for e in events if e.kind == "purchase"})


def rfm(events: Sequence[HistoryEvent], now: datetime) -> list[float]:
    """log(1 + days since the last purchase), log(1 + orders), log(1 + money spent)."""
    bought = [e for e in events if e.kind == "purchase" and e.at <= now]
    if not bought:
        return [math.log1p(365.0), 0.0, 0.0]
    recency = _days((now - max(e.at for e in bought)).total_seconds())
    spent = sum(max(0.0, e.value) for e in bought)
    return [math.log1p(recency), math.log1p(orders(bought)), math.log1p(spent)]


def rhythm(events: Sequence[HistoryEvent], now: datetime) -> list[float]:
    """log(1 + days since the first purchase), log(1 + how overdue the next order is), log(1 + mean gap).

    "Overdue" is the days since the last purchase over the shopper's mean gap
    between purchase days: 30 days of silence mean little from a shopper who
    buys quarterly and much from one who buys weekly. A one-day shopper's gap
    is taken as their tenure plus 30 days (it is at least that long).
    """
    days = sorted({e.at for e in events if e.kind == "purchase" and e.at <= now})
    if not days:
        return [math.log1p(365.0), 0.0, math.log1p(395.0)]
    dates = sorted({d.date() for d in days})
    tenure = _days((now - days[0]).total_seconds())
    recency = _days((now - days[-1]).total_seconds())
    gap = (dates[-1] - dates[0]).days / (len(dates) - 1) if len(dates) > 1 else tenure + 30
    return [math.log1p(tenure), math.log1p(recency / (gap + 1)), math.log1p(gap)]


def lookback(events: Sequence[HistoryEvent], now: datetime, days: int = LOOKBACK_DAYS) -> list[float]:
    """:data:`LOOKBACK_FEATURES`: recency, then orders, money, returns and rhythm of the last ``days`` only.

    Lifetime counts and tenure grow with the length of the recorded history,
    so a model fitted on short histories misreads long ones. These features
    look back a fixed window (recency is the one exception: it needs no
    window), so they are defined the same way at any date.
    """
    past = [e for e in events if e.at <= now and _days((now - e.at).total_seconds()) < days]
    bought = [e for e in past if e.kind == "purchase"]
    dates = sorted({e.at.date() for e in bought})
    gap = (dates[-1] - dates[0]).days / (len(dates) - 1) if len(dates) > 1 else float(days)
    recency = rfm(events, now)[0]
    recent_days = {e.at.date() for e in bought if _days((now - e.at).total_seconds()) < 30}
    return [recency, math.log1p(orders(bought)), math.log1p(sum(max(0.0, e.value) for e in bought)),
            math.log1p(len(recent_days)), math.log1p(sum(e.kind == "return" for e in past)), math.log1p(gap),
            math.log1p(math.expm1(recency) / (gap + 1))]


def churn_features(events: Sequence[HistoryEvent], now: datetime, names: Sequence[str] = CHURN_FEATURES
                   ) -> list[float]:
    """The named features (a prefix of :data:`CHURN_FEATURES`, as a model directory lists them)."""
    if tuple(names) != CHURN_FEATURES[: len(names)]:
        raise ValueError(f"unknown churn features {list(names)}; expected a prefix of {list(CHURN_FEATURES)}")
    values = rfm(events, now) + (rhythm(events, now) if len(names) > len(RFM_FEATURES) else [])
    return values[: len(names)]


def _ago(now: datetime, at: datetime) -> str:
    d = int(_days((now - at).total_seconds()))
    return "today" if d == 0 else "1 day ago" if d == 1 else f"{d} days ago"


def render(events: Sequence[HistoryEvent], now: datetime, max_lines: int = 10) -> str:
    """A compact, most-recent-first description of the history before ``now``."""
    past = sorted((e for e in events if e.at <= now), key=lambda e: e.at, reverse=True)
    if not past:
        return "New shopper, no history."
    bought = [e for e in past if e.kind == "purchase"]
    head = [f"Shopper for {int(_days((now - past[-1].at).total_seconds()))} days."]
    if bought:
        head.append(f"Last purchase {_ago(now, bought[0].at)}; {orders(bought)} orders, "
                    f"spent {sum(e.value for e in bought):.0f}.")
    else:
        head.append("Never bought.")
    counts = {k: sum(e.kind == k for e in past) for k in ("return", "complaint", "view", "cart")}
    if any(counts.values()):
        head.append(", ".join(f"{n} {k}s" for k, n in counts.items() if n) + ".")
    lines: list[str] = []
    group: list[HistoryEvent] = []

    def flush() -> None:
        if group:
            g = group[0]
            titles = "; ".join(e.title for e in group[:3]) + (f" and {len(group) - 3} more" if len(group) > 3 else "")
            lines.append(f"{_ago(now, g.at)} {VERBS[g.kind]}: {titles}.")
            group.clear()

    for e in past:
        if len(lines) >= max_lines:
            break
        if e.kind in ("purchase", "view", "cart"):
            if group and (group[0].kind != e.kind or (group[0].order or group[0].at.date()) != (e.order or e.at.date())):
                flush()
            group.append(e)
            continue
        flush()
        if e.kind == "review":
            lines.append(f"{_ago(now, e.at)} reviewed {e.title} {e.value:.0f}/5.")
        elif e.kind == "return":
            lines.append(f"{_ago(now, e.at)} returned {e.title}.")
        else:
            lines.append(f'{_ago(now, e.at)} complained: "{e.title}".')
    flush()
    return " ".join(x for x in head if x) + " " + " ".join(lines[:max_lines])
