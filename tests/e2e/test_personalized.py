"""Personalization changes what is offered, never what is true (real model served by vLLM)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.db import make_engine, session_factory
from bot.mentions import mention_text
from bot.models import Message, Product, Role
from bot.prompts import stock_phrase
from bot.store import to_doc
from tests.bot.personas import PERSONAS, add_personas
from tests.conftest import make_settings, serve, stored_meta
from tests.e2e.adapter_support import serve_installed
from tests.web.wsclient import ask, open_chat
from web.app import create_app


def facts_of(reply: dict[str, Any], catalog: dict[str, Product]) -> dict[str, tuple[float, int]]:
    """(price, stock) of every product a reply mentions or shows, checked against the catalog as it goes."""
    out = {}
    for card in reply["products"]:
        row = catalog[card["sku"]]
        assert (card["price"], card["currency"], card["availability"]) == (row.price, row.currency,
                                                                          stock_phrase(row.stock))
        out[card["sku"]] = (card["price"], card["stock"])
    for m in reply["meta"].get("mentions", []):
        p = to_doc(catalog[m["sku"]])
        assert m["text"] in (mention_text(p), p.title) and m["text"] in reply["text"]  # the catalog's own words
        out[m["sku"]] = (p.price, p.stock)
    return out


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_three_shoppers_get_their_own_products_and_the_same_facts(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    add_personas(factory)
    adapter = serve_installed(factory)  # the default grounding adapter, which refers to listed products by number
    with factory() as s:
        catalog = {p.sku: p for p in s.scalars(select(Product))}
        s.expunge_all()
    target = min((p for p in catalog.values() if p.category == "Headphones & Audio"), key=lambda p: p.sku)
    factual = f"How much is the {target.title}?"
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=48)
    replies: dict[str, list[dict[str, Any]]] = {}
    with serve(create_app(settings)) as base:
        for name in PERSONAS:
            ws, _ = await open_chat(base, f"persona-{name}")
            replies[name] = [(await ask(ws, "What would you recommend for me?", f"{name}-1"))[-1],
                             (await ask(ws, factual, f"{name}-2"))[-1]]
            await ws.close()

    # personal picks: each shopper's recommendations lean to their own category, and differ between shoppers
    for name, category in PERSONAS.items():
        rec, _ = replies[name]
        cards = rec["products"]
        assert sum(c["category"] == category for c in cards) >= 3, (name, [c["category"] for c in cards])
        assert category.lower() in stored_meta(factory, rec)["profile"]
    for a, b in combinations(PERSONAS, 2):
        assert {c["sku"] for c in replies[a][0]["products"]} != {c["sku"] for c in replies[b][0]["products"]}

    # consistent facts: every product any reply mentions or shows has the catalog's price and stock, the
    # same for every shopper; the factual question gets the same product first for all three
    seen: dict[str, tuple[float, int]] = {}
    for reply in (r for pair in replies.values() for r in pair):
        for sku, fact in facts_of(reply, catalog).items():
            assert seen.setdefault(sku, fact) == fact, sku
    assert {r[1]["products"][0]["sku"] for r in replies.values()} == {target.sku}
    assert any(r["meta"].get("mentions") for pair in replies.values() for r in pair)  # the model refers by number

    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        rows = s.scalars(select(Message).where(Message.role == Role.ASSISTANT).order_by(Message.id)).all()
    engine.dispose()
    assert len(rows) == 6 and all(m.meta["status"] == "completed" and m.text for m in rows)
    assert {m.meta["adapter"] for m in rows} == {adapter}
    assert all(m.meta["profile"] is not None for m in rows)
