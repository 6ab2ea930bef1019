"""Connection hygiene over real sockets: dead peers, slow readers, per-IP caps, one generation per conversation.

These test the transport, so a scripted backend stands in for the model.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.config import Settings
from bot.llm.base import GenerationRequest, StreamItem
from bot.llm.scripted import ScriptedBackend
from bot.models import Conversation, User
from tests.conftest import make_settings, serve
from tests.web.test_bad_input import messages
from tests.web.wsclient import ask, new_token, open_chat, recv, ws_url
from web.app import create_app
from web.connections import Connections, Outbox, SlowReader


class CountingBackend(ScriptedBackend):
    """Records the most generations it ever had in flight at once."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.in_flight = self.most_in_flight = 0

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            async for item in super().stream(request):
                yield item
        finally:
            self.in_flight -= 1


def transport_settings(tmp_path: Path, db_url: str, saved_index: Path, **overrides: object) -> Settings:
    return make_settings(tmp_path, db_url, saved_index, signals=False, personalize=False, messages_per_s=100.0,
                         message_burst=100, **overrides)


def silent_peer(base: str, token: str, rcvbuf: int = 4096) -> socket.socket:
    """A raw client that completes the WebSocket handshake and then never reads or answers a ping."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/chat?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


def mask(payload: bytes) -> bytes:
    """A masked client text frame (clients must mask)."""
    key = os.urandom(4)
    header = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else \
        bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def conversation_of(db_url: str, shopper_id: str) -> int:
    engine = create_engine(db_url)
    with Session(engine) as session:
        conv = session.scalars(select(Conversation).join(User).where(User.external_id == shopper_id)).one()
    engine.dispose()
    return conv.id


async def until(predicate: object, timeout_s: float) -> float:
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_outbox_sheds_a_reader_that_falls_behind_and_keeps_order() -> None:
    sent: list[str] = []
    gate = asyncio.Event()

    async def send(text: str) -> None:
        await gate.wait()
        sent.append(text)

    box = Outbox(send, limit=3, wait_s=0.2)
    writer = asyncio.create_task(box.run())
    for i in range(4):  # the writer holds one frame, three wait
        await box.put(str(i))
        await asyncio.sleep(0)
    started = time.monotonic()
    with pytest.raises(SlowReader):
        await box.put("4")
    assert 0.2 <= time.monotonic() - started < 1
    gate.set()
    await box.put("4")  # a reader that catches up is never shed
    await until(lambda: len(sent) == 5, 2)
    writer.cancel()
    assert sent == ["0", "1", "2", "3", "4"]


async def test_registry_caps_sockets_and_sessions_per_ip_and_serialises_a_conversation() -> None:
    now = [0.0]
    reg = Connections(per_ip=2, sessions_per_min=6, session_burst=2, max_ips=2, clock=lambda: now[0])
    assert reg.open("a") and reg.open("a") and not reg.open("a") and reg.open("b")
    reg.close("a")
    assert reg.open("a") and reg.open_sockets == 3
    assert reg.session_allowed("a") is None and reg.session_allowed("a") is None
    assert reg.session_allowed("a") == pytest.approx(10.0)
    now[0] = 10.0
    assert reg.session_allowed("a") is None
    order: list[str] = []

    async def turn(name: str) -> None:
        async with reg.generation(7):
            order.append(f"{name}+")
            await asyncio.sleep(0.01)
            order.append(f"{name}-")

    await asyncio.gather(turn("x"), turn("y"))
    assert order == ["x+", "x-", "y+", "y-"] and reg.locks == {}


def test_default_keepalive_drops_a_dead_peer_within_45_s() -> None:
    s = Settings()
    assert s.ws_ping_interval_s + s.ws_ping_timeout_s <= 45
    assert s.server_options()["ws_ping_interval"] == s.ws_ping_interval_s


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_dead_peer_is_cleaned_up_after_missed_pings(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    app = create_app(transport_settings(tmp_path, db_url, saved_index),
                     llm=ScriptedBackend(lambda _: "hello there", delay_s=0.01))
    with serve(app, ws_ping_interval=1.0, ws_ping_timeout=1.0) as base:
        peer = silent_peer(base, new_token(base, "ghost"))
        registry = app.state.aisle.connections
        await until(lambda: registry.open_sockets == 1, 5)
        cleaned_in = await until(lambda: registry.open_sockets == 0, 10)  # interval + timeout + slack
        assert cleaned_in <= 4.0
        assert httpx.get(f"{base}/healthz", timeout=5).json()["sockets"] == 0
        peer.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_slow_reader_is_shed_and_others_are_served(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    def flood(request: GenerationRequest) -> str:
        last = request.messages[-1]["content"]
        return " ".join(["lorem" * 80] * 20_000) if "flood" in last else "Here are some warm socks."

    app = create_app(transport_settings(tmp_path, db_url, saved_index, outbox_frames=64, outbox_wait_s=1.0),
                     llm=ScriptedBackend(flood))
    with serve(app) as base:
        registry = app.state.aisle.connections
        peer = silent_peer(base, new_token(base, "sloth"))
        peer.sendall(mask(json.dumps({"type": "message.create", "client_id": "s-1", "text": "flood me"}).encode()))
        ws, ready = await open_chat(base, "reader")
        frames = await ask(ws, "warm socks please", "r-1", timeout=20)
        assert frames[-1]["text"] == "Here are some warm socks."
        # the sloth was shed, the reader stays (the flood takes over 20 s to fill its outbox on a slow CPU; aca74fe
        # failed here too on the 2026-12-07 AVX2 machine)
        await until(lambda: registry.open_sockets == 1, 90)
        assert (await ask(ws, "and a hat", "r-2", timeout=20))[-1]["type"] == "message.completed"
        await ws.close()
        peer.close()
    sloth = messages(db_url, conversation_of(db_url, "sloth"))
    assert [m.client_id for m in sloth if m.client_id] == ["s-1"]  # its message was kept
    assert sloth[-1].meta.get("status") == "interrupted"  # and its partial reply saved as such


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_one_generation_per_conversation_across_sockets(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    llm = CountingBackend(lambda _: "one two three four five six seven eight", delay_s=0.02)
    app = create_app(transport_settings(tmp_path, db_url, saved_index), llm=llm)
    with serve(app) as base:
        (a, ready_a), (b, ready_b) = await open_chat(base, "twin"), await open_chat(base, "twin")
        assert ready_a["conversation_id"] == ready_b["conversation_id"]
        async def three_turns(i: int, ws: ClientConnection) -> list[list[dict[str, object]]]:
            return [await ask(ws, f"hello from {i}", f"t-{i}-{n}", timeout=30) for n in range(3)]

        replies = await asyncio.gather(three_turns(0, a), three_turns(1, b))
        assert all(r[-1]["type"] == "message.completed" for turns in replies for r in turns)
        assert len(llm.requests) == 6 and llm.most_in_flight == 1
        for ws in (a, b):
            await ws.close()
    seqs = [m.seq for m in messages(db_url, ready_a["conversation_id"])]
    assert seqs == list(range(1, 13))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sockets_and_new_sessions_are_capped_per_ip(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    settings = transport_settings(tmp_path, db_url, saved_index, sockets_per_ip=3, session_burst_per_ip=5,
                                  sessions_per_ip_per_min=6)
    app = create_app(settings, llm=ScriptedBackend(lambda _: "hi"))
    with serve(app) as base:
        tokens = [new_token(base, f"cap-{i}") for i in range(4)]
        statuses = [httpx.post(f"{base}/api/session", json={}, timeout=5) for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 429, 429]
        assert int(statuses[-1].headers["Retry-After"]) >= 1 and "try again" in statuses[-1].json()["detail"]
        sockets = [await connect(ws_url(base, t)) for t in tokens[:3]]
        assert [json.loads(await ws.recv())["type"] for ws in sockets] == ["session.ready"] * 3
        extra = await connect(ws_url(base, tokens[3]))
        with pytest.raises(ConnectionClosed) as info:
            await recv(extra, 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1013
        await sockets[0].close()
        await until(lambda: app.state.aisle.connections.open_sockets == 2, 5)
        again = await connect(ws_url(base, tokens[3]))  # a slot is free again
        assert json.loads(await again.recv())["type"] == "session.ready"
        for ws in (*sockets[1:], again):
            await ws.close()
