"""Per-shopper churn risk from the live database, cached until the shopper's behaviour changes.

The history is read in the same format the model was trained on
(:mod:`bot.shopper_history`): views, carts, purchases, returns and reviews
from the events table, plus the shopper's negative chat messages as
complaints. A score stays cached until :meth:`ChurnRisk.invalidate` is called,
which the chat service does on every behaviour event and negative message.
A shopper who has never bought has no churn risk (None): the model learned from
customers with purchases, and a first visit is not a customer leaving.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Conversation, Event, EventType, Message, Product, Role
from bot.shopper_history import HistoryEvent, churn_features, render
from bot.signals import ChurnModel

KINDS = {EventType.VIEW: "view", EventType.CART: "cart", EventType.PURCHASE: "purchase",
         EventType.RETURN: "return", EventType.REVIEW: "review"}


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def load_history(session: Session, user_id: int, limit: int = 400) -> list[HistoryEvent]:
    """The shopper's latest behaviour events and negative messages, oldest first."""
    rows = session.execute(
        select(Event.type, Event.value, Event.session, Event.created_at, Product.title)
        .outerjoin(Product, Product.id == Event.product_id)
        .where(Event.user_id == user_id, Event.type.in_(list(KINDS)))
        .order_by(Event.created_at.desc()).limit(limit)).all()
    out = [HistoryEvent(_aware(at), KINDS[kind], title or "", float(value or 0.0), sess or "")
           for kind, value, sess, at, title in rows]
    messages = session.execute(
        select(Message.text, Message.meta, Message.created_at).join(Conversation)
        .where(Conversation.user_id == user_id, Message.role == Role.SHOPPER)
        .order_by(Message.id.desc()).limit(50)).all()
    for text, meta, at in messages:
        if ((meta or {}).get("signals") or {}).get("sentiment", {}).get("label") == "negative":
            out.append(HistoryEvent(_aware(at), "complaint", text[:160]))
    return sorted(out, key=lambda e: e.at)


class ChurnRisk:
    """Cached churn probabilities per shopper."""

    def __init__(self, model: ChurnModel, factory: sessionmaker[Session]) -> None:
        self.model = model
        self.factory = factory
        self._cache: dict[int, float | None] = {}
        self._lock = threading.Lock()
        self.computed = 0  # how many scores were computed (not served from the cache)

    def invalidate(self, user_id: int) -> None:
        with self._lock:
            self._cache.pop(user_id, None)

    def score(self, user_id: int, *, complaint: str | None = None, now: datetime | None = None) -> float | None:
        """The shopper's churn probability, None before their first purchase; ``complaint`` is a negative
        message not stored yet."""
        with self._lock:
            if user_id in self._cache:
                return self._cache[user_id]
        now = now or datetime.now(UTC)
        with self.factory() as session:
            history = load_history(session, user_id)
        if complaint:
            history.append(HistoryEvent(now, "complaint", complaint[:160]))
        bought = any(e.kind == "purchase" for e in history)
        features = churn_features(history, now, self.model.config.feature_names)
        value = self.model.predict([render(history, now)], [features])[0] if bought else None
        with self._lock:
            self._cache[user_id] = value
            self.computed += 1
        return value
