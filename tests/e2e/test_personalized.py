"""Personalization changes what is offered, never what is true (real model served by vLLM)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import make_engine, session_factory
from bot.models import Message, Product, Role
from tests.bot.personas import PERSONAS, add_personas
from tests.conftest import make_settings, serve, stored_meta
from tests.web.wsclient import ask, open_chat
from web.app import create_app


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_two_shoppers_get_their_own_products_and_the_same_facts(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    add_personas(factory)
    with factory() as s:
        target = s.scalars(select(Product).where(Product.category == "Headphones & Audio")
                           .order_by(Product.sku)).first()
        assert target is not None
    factual = f"How much is the {target.title}?"
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=48)
    replies: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    with serve(create_app(settings)) as base:
        for name in PERSONAS:
            ws, _ = await open_chat(base, f"persona-{name}")
            replies[name] = [(await ask(ws, "What would you recommend for me?", f"{name}-1"))[-1],
                             (await ask(ws, factual, f"{name}-2"))[-1]]
            await ws.close()

    for name, category in PERSONAS.items():
        rec, _ = replies[name]
        cards = rec["products"]
        assert sum(c["category"] == category for c in cards) >= 3, (name, [c["category"] for c in cards])
        assert category.lower() in stored_meta(factory, rec)["profile"]
    assert {c["sku"] for c in replies["runner"][0]["products"]} != {c["sku"] for c in replies["cook"][0]["products"]}

    facts = [(r[1]["products"][0]["sku"], r[1]["products"][0]["price"]) for r in replies.values()]
    assert facts[0] == facts[1] == (target.sku, target.price)

    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        rows = s.scalars(select(Message).where(Message.role == Role.ASSISTANT).order_by(Message.id)).all()
    engine.dispose()
    assert len(rows) == 4 and all(m.meta["status"] == "completed" and m.text for m in rows)
    assert [m.meta["profile"] is not None for m in rows] == [True] * 4
