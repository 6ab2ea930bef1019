"""Bad input over a real socket to the real app: a clear error frame, and nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bot.db import make_engine, session_factory
from bot.models import Message, Role, User
from bot.turn_events import SHOPPER_META
from tests.conftest import free_port, make_settings, serve
from tests.web.wsclient import ask, open_chat, recv, ws_url
from web.app import create_app


def messages(db_url: str, conversation_id: int) -> list[Message]:
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        rows = list(s.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq)))
    engine.dispose()
    return rows


BAD_FRAMES = [
    pytest.param("{not json", "bad_frame", id="malformed-json"),
    pytest.param("[1, 2]", "bad_frame", id="not-an-object"),
    pytest.param(json.dumps({"type": "cart.explode"}), "unknown_type", id="unknown-type"),
    pytest.param(json.dumps({"type": "message.create", "client_id": "e1", "text": "   "}), "empty_message", id="empty"),
    pytest.param(json.dumps({"type": "message.create", "client_id": "e2", "text": "x" * 5_000}), "message_too_long", id="5000-chars"),
    pytest.param(json.dumps({"type": "message.create", "text": "no client id"}), "invalid_frame", id="missing-field"),
    pytest.param(json.dumps({"type": "resume", "last_seq": -4}), "invalid_frame", id="bad-resume"),
]


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_bad_frames_get_errors_and_the_connection_survives(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=24)
    with serve(create_app(settings)) as base:
        ws, ready = await open_chat(base, "bad-input")
        frames = await ask(ws, "a cosy throw blanket", "ok-1")
        assert frames[-1]["type"] == "message.completed"
        for raw, code in [p.values for p in BAD_FRAMES]:
            await ws.send(raw)
            frame = await recv(ws, 10)
            assert frame["type"] == "error" and frame["code"] == code, (raw[:40], frame)
            assert frame["message"]
        frames = await ask(ws, "and a pillow to match", "ok-2")  # the same connection still works
        assert frames[-1]["type"] == "message.completed"
        await ws.close()
        rows = messages(db_url, ready["conversation_id"])
        assert [m.role for m in rows] == [Role.SHOPPER, Role.ASSISTANT] * 2
        assert [m.client_id for m in rows if m.role == Role.SHOPPER] == ["ok-1", "ok-2"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_vllm_down_gives_error_and_fallback_and_keeps_the_message(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=dead, connect_timeout_s=1.0)
    with serve(create_app(settings)) as base:
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 503 and health.json()["llm"]["ok"] is False
        deadlines = health.json()["llm"]["deadlines"]  # no probe answered: the configured ones stand
        assert deadlines == {"first_token_s": settings.first_token_timeout_s,
                             "token_gap_s": settings.token_gap_timeout_s, "probe_s": None}
        ws, ready = await open_chat(base, "no-model")
        frames = await ask(ws, "hiking boots under $150", "down-1", timeout=15)
        await ws.close()
    types = [f["type"] for f in frames]
    assert types == ["message.created", "error", "message.completed"]
    assert frames[1]["code"] == "llm_unavailable"
    done = frames[-1]
    assert done["products"] and all(p["price"] <= 150 for p in done["products"])
    assert done["meta"]["status"] == "fallback"
    rows = messages(db_url, ready["conversation_id"])
    assert [(m.role, m.client_id) for m in rows] == [(Role.SHOPPER, "down-1"), (Role.ASSISTANT, None)]
    stored = rows[1].meta
    assert stored["error"] and stored["prompt"] and stored["signals"]  # kept for the console and the logs
    assert set(done["meta"]) <= set(SHOPPER_META) and done["meta"]["model"] == stored["model"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_missing_or_tampered_token_is_refused(tmp_path: Path, db_url: str, factory, saved_index: Path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=f"http://127.0.0.1:{free_port()}")
    with serve(create_app(settings)) as base:
        good = httpx.post(f"{base}/api/session", json={"shopper_id": "t-1"}).json()["token"]
        for token in ("", good[:-2] + ("AA" if not good.endswith("AA") else "BB"), "garbage"):
            with pytest.raises(InvalidStatus) as info:
                async with connect(ws_url(base, token)):
                    pass
            assert info.value.response.status_code == 403
        bad = httpx.post(f"{base}/api/session", json={"shopper_id": "<script>"})
        assert bad.status_code == 422
        for name in ("", "<b>Zoe</b>", "Zoe\nKowalczyk", "x" * 101):  # the storefront's name for its shopper
            bad = httpx.post(f"{base}/api/session", json={"shopper_id": "t-2", "name": name})
            assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "name"], name
        named = httpx.post(f"{base}/api/session", json={"shopper_id": "t-2", "name": "  Zoe   Kowalczyk "})
        assert named.status_code == 200
        with factory() as s:
            assert s.scalars(select(User.name).where(User.external_id == "t-2")).one() == "Zoe Kowalczyk"
