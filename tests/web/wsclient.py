"""A small real WebSocket client for tests (the `websockets` package)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect


def new_token(base: str, shopper_id: str | None = None) -> str:
    body = {"shopper_id": shopper_id} if shopper_id else {}
    resp = httpx.post(f"{base}/api/session", json=body, timeout=10)
    resp.raise_for_status()
    return str(resp.json()["token"])


def ws_url(base: str, token: str) -> str:
    return base.replace("http://", "ws://") + f"/ws/chat?token={token}"


async def open_chat(base: str, shopper_id: str | None = None) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(ws_url(base, new_token(base, shopper_id)), max_size=2**22)
    ready = json.loads(await ws.recv())
    assert ready["type"] == "session.ready"
    return ws, ready


async def recv(ws: ClientConnection, timeout: float = 120) -> dict[str, Any]:
    import asyncio

    return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


async def ask(ws: ClientConnection, text: str, client_id: str, timeout: float = 180) -> list[dict[str, Any]]:
    """Send a message and collect frames up to and including message.completed."""
    await ws.send(json.dumps({"type": "message.create", "client_id": client_id, "text": text}))
    frames = []
    while True:
        frame = await recv(ws, timeout)
        frames.append(frame)
        if frame["type"] == "message.completed":
            return frames


def agent_token(base: str, name: str, password: str) -> str:
    resp = httpx.post(f"{base}/api/agent/login", json={"name": name, "password": password}, timeout=30)
    resp.raise_for_status()
    return str(resp.json()["token"])


async def open_console(base: str, name: str, password: str) -> tuple[ClientConnection, dict[str, Any]]:
    """An agent socket, past its ``agent.ready``; returns it with the first queue snapshot."""
    url = base.replace("http://", "ws://") + f"/ws/agent?token={agent_token(base, name, password)}"
    ws = await connect(url, max_size=2**22)
    assert json.loads(await ws.recv())["type"] == "agent.ready"
    snapshot = json.loads(await ws.recv())
    assert snapshot["type"] == "queue.snapshot"
    return ws, snapshot


async def recv_until(ws: ClientConnection, kind: str, timeout: float = 30) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read frames until one of type ``kind``; returns it and every frame read before it."""
    before = []
    while (frame := await recv(ws, timeout))["type"] != kind:
        before.append(frame)
    return frame, before
