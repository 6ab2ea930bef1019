"""The spine end to end: WebSocket -> retrieval -> real model -> streamed, grounded reply -> SQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.db import make_engine, session_factory
from bot.models import Message, Product, Role
from tests.conftest import make_settings, serve
from tests.web.wsclient import ask, open_chat
from web.app import create_app

QUESTION = "waterproof running shoes under $100"


async def run_spine_turn(base: str, db_url: str, backend: str) -> None:
    ws, ready = await open_chat(base, "e2e-runner")
    frames = await ask(ws, QUESTION, "q-1")
    await ws.close()
    created = [f for f in frames if f["type"] == "message.created"]
    deltas = [f for f in frames if f["type"] == "message.delta"]
    done = frames[-1]
    assert [f["type"] for f in frames if f["type"] == "error"] == []
    assert created and created[0]["text"] == QUESTION and created[0]["client_id"] == "q-1"
    assert len(deltas) >= 2, f"only {len(deltas)} deltas"  # it streams, clause by clause (bot/guard.py)
    assert frames.index(deltas[-1]) < frames.index(done)
    assert {d["id"] for d in deltas} == {done["id"]}
    assert "".join(d["text"] for d in deltas).strip() == done["text"] and done["text"]

    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        catalog = {p.sku: p.price for p in s.scalars(select(Product))}
        rows = s.scalars(select(Message).where(Message.conversation_id == ready["conversation_id"])
                         .order_by(Message.seq)).all()
    engine.dispose()
    cards = done["products"]
    assert cards, "no product cards"
    assert all(c["sku"] in catalog and catalog[c["sku"]] == c["price"] <= 100 for c in cards)
    assert [(m.role, m.text) for m in rows] == [(Role.SHOPPER, QUESTION), (Role.ASSISTANT, done["text"])]
    meta = rows[1].meta
    assert meta["retrieved_skus"] == [c["sku"] for c in cards]
    assert meta["backend"] == backend and meta["model"] == "aisle-base" and meta["status"] == "completed"
    assert meta["tokens"]["prompt"] > 50 and meta["tokens"]["completion"] >= 5
    assert 0 < meta["latency_ms"]["first_token"] <= meta["latency_ms"]["total"]


@pytest.mark.vllm
@pytest.mark.spine
async def test_spine_on_vllm(tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url)
    with serve(create_app(settings)) as base:
        health = httpx.get(f"{base}/healthz").json()
        assert health["status"] == "ok" and health["llm"]["backend"] == "vllm"
        await run_spine_turn(base, db_url, "vllm")


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_same_turn_on_local_backend(tmp_path: Path, db_url: str, factory, saved_index: Path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, db_url, saved_index, llm="local")
    with serve(create_app(settings)) as base:
        assert httpx.get(f"{base}/healthz").json()["llm"]["backend"] == "local"
        await run_spine_turn(base, db_url, "local")
