from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot import crud
from bot.churn_risk import ChurnRisk
from bot.models import Event, EventType, Product
from bot.signals import ChurnModel, latest_model
from tests.conftest import CLASSIFIERS


@pytest.fixture(scope="module")
def churn_model() -> ChurnModel:
    return ChurnModel(latest_model(CLASSIFIERS, "churn"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_risk_is_cached_until_invalidated_and_unknown_before_a_first_purchase(factory, churn_model) -> None:  # type: ignore[no-untyped-def]
    risk = ChurnRisk(churn_model, factory)
    with factory() as s:
        buyer = s.scalar(select(Event.user_id).where(Event.type == EventType.PURCHASE)
                         .group_by(Event.user_id).order_by(func.count().desc()).limit(1))
    assert buyer is not None
    first = risk.score(buyer)
    assert first is not None and 0 < first < 1
    assert risk.score(buyer) == first and risk.computed == 1  # served from the cache
    with factory() as s, s.begin():
        newcomer = crud.get_or_create_user(s, external_id="first-visit").id
    assert risk.score(newcomer) is None  # never bought: no churn risk, not a high one
    with factory() as s, s.begin():
        product = s.scalars(select(Product).limit(1)).one()
        s.add(Event(user_id=newcomer, product_id=product.id, type=EventType.PURCHASE, value=product.price))
    assert risk.score(newcomer) is None  # still cached
    risk.invalidate(newcomer)
    fresh = risk.score(newcomer)
    assert fresh is not None and 0 < fresh < 1 and risk.computed == 3
