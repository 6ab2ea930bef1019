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
