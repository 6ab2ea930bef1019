"""Connection limits on the real app over real sockets: frame size, message rate, Origin.

The rate limit is transport logic, so its flood runs against a scripted model.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bot.llm.scripted import ScriptedBackend
from tests.conftest import make_settings, serve
from tests.web.test_bad_input import messages
from tests.web.wsclient import ask, new_token, open_chat, recv, ws_url
from web.app import create_app
from web.auth import SALT
from web.limits import TokenBucket, origin_allowed


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=1.0, burst=5, clock=lambda: now[0])
    assert [bucket.take() for _ in range(5)] == [None] * 5
    assert bucket.take() == pytest.approx(1.0)
    now[0] = 2.5
    assert [bucket.take() is None for _ in range(3)] == [True, True, False]


def test_origin_rules() -> None:
    assert origin_allowed(None, "shop:8000", [])  # not a browser
    assert origin_allowed("http://shop:8000", "shop:8000", [])  # same origin
    assert origin_allowed("https://store.example", "api:8000", ["https://store.example/"])
    assert origin_allowed("https://any.example", "api:8000", ["*"])
    for hostile in ("https://evil.example", "http://shop:8001", "null", "file://shop:8000", "javascript:alert(1)"):
        assert not origin_allowed(hostile, "shop:8000", ["https://store.example"]), hostile


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_oversized_frame_closes_with_1009_and_keeps_earlier_messages(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=16)
    with serve(create_app(settings)) as base:
        ws, ready = await open_chat(base, "big-frames")
        assert (await ask(ws, "a warm scarf", "big-1"))[-1]["type"] == "message.completed"
        started = time.monotonic()
        await ws.send(json.dumps({"type": "message.create", "client_id": "big-2", "text": "x" * 100_000}))
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws, 5)
        assert time.monotonic() - started < 1.0
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert [m.client_id for m in messages(db_url, ready["conversation_id"]) if m.client_id] == ["big-1"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_flood_is_held_to_the_burst_plus_the_rate(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings(tmp_path, db_url, saved_index, signals=False)
    with serve(create_app(settings, llm=ScriptedBackend(lambda _: "Warm socks are on aisle three."))) as base:
        ws, ready = await open_chat(base, "flooder")
        started = time.monotonic()
        for i in range(20):
            await ws.send(json.dumps({"type": "message.create", "client_id": f"f-{i}", "text": f"socks {i}"}))
        sent_in = time.monotonic() - started
        limited, created, completed = 0, 0, 0
        while limited + completed < 20:
            frame = await recv(ws, 120)
            if frame["type"] == "error":
                assert frame["code"] == "rate_limited" and "again" in frame["message"]
                limited += 1
            elif frame["type"] == "message.created":
                created += 1
            elif frame["type"] == "message.completed":
                completed += 1
        await ws.close()
    assert created == completed and created <= 5 + int(sent_in) + 1 and limited >= 20 - created
    stored = [m for m in messages(db_url, ready["conversation_id"]) if m.client_id]
    assert len(stored) == created  # refused messages were never stored; the client sends them again


def expired_token(key: str, shopper_id: str) -> str:
    """A token signed with the server's key a year ago."""

    class LastYear(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 365 * 86400

    return URLSafeTimedSerializer(key, salt=SALT, signer=LastYear).dumps({"sid": shopper_id})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_hostile_origins_and_bad_tokens_are_refused_every_time(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url="http://127.0.0.1:9",
                             allowed_origins=["https://store.example"])
    with serve(create_app(settings)) as base:
        token = new_token(base, "origin-test")
        tampered = token[:-3] + ("xyz" if not token.endswith("xyz") else "abc")
        attempts = [(ws_url(base, token), "https://evil.example"), (ws_url(base, tampered), None),
                    (ws_url(base, ""), None), (ws_url(base, token), "null"),
                    (ws_url(base, expired_token(settings.signing_key(), "origin-test")), base)]
        refused = 0
        for i in range(200):
            url, origin = attempts[i % len(attempts)]
            try:
                async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
                    await ws.recv()
            except InvalidStatus as exc:
                refused += exc.response.status_code == 403
        assert refused == 200
        async with connect(ws_url(base, token), origin="https://store.example") as ws:  # type: ignore[arg-type]
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.ready"
        async with connect(ws_url(base, token), origin=base) as ws:  # type: ignore[arg-type]
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.ready"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_one_shoppers_token_never_reaches_another_shoppers_conversation(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url="http://127.0.0.1:9")  # fallback replies
    with serve(create_app(settings)) as base:
        alice, alice_ready = await open_chat(base, "alice")
        said = await ask(alice, "my address is 1 Private Lane, any rain jackets?", "a-1", timeout=30)
        reply_id = said[-1]["id"]
        bob, bob_ready = await open_chat(base, "bob")
        assert bob_ready["conversation_id"] != alice_ready["conversation_id"] and bob_ready["last_seq"] == 0
        await bob.send(json.dumps({"type": "resume", "last_seq": 0}))  # everything Bob may see: nothing yet
        await bob.send(json.dumps({"type": "feedback.create", "message_id": reply_id, "rating": -1}))
        frame = await recv(bob, 10)
        assert frame["type"] == "error" and frame["code"] == "unknown_message"  # Alice's reply is not his
        await bob.send(json.dumps({"type": "resume", "last_seq": 0}))
        await bob.send(json.dumps({"type": "message.create", "client_id": "b-1", "text": "hello"}))
        frame = await recv(bob, 10)
        assert frame["type"] == "message.created" and frame["client_id"] == "b-1" and frame["seq"] == 1
        await alice.close()
        await bob.close()
