"""Three shoppers with clear, different histories: a runner, a home cook and a camper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import crud
from bot.models import Event, EventType, Product

PERSONAS = {"runner": "Running Shoes", "cook": "Cookware", "camper": "Camping Gear"}


def add_personas(factory: sessionmaker[Session]) -> dict[str, int]:
    """Create the shoppers with four purchases and some views in their category; returns user ids."""
    ids = {}
    when = datetime(2026, 10, 1, tzinfo=UTC)
    with factory() as s, s.begin():
        for name, category in PERSONAS.items():
            user = crud.get_or_create_user(s, external_id=f"persona-{name}")
            products = s.scalars(select(Product).where(Product.category == category).order_by(Product.sku)).all()
            for n, p in enumerate(products[:8]):
                kind = EventType.PURCHASE if n < 4 else EventType.VIEW
                s.add(Event(user_id=user.id, product_id=p.id, type=kind, session=f"{name}-{n // 4}",
                            created_at=when + timedelta(days=n)))
            ids[name] = user.id
    return ids
