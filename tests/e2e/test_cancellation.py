"""A shopper who disconnects mid-stream aborts the vLLM request (measured on vLLM's own metric)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import make_settings, serve
from tests.web.wsclient import open_chat, recv
from web.app import create_app

RUNNING = re.compile(r"^vllm:num_requests_running\{[^}]*\}\s+([0-9.]+)", re.MULTILINE)
QUESTION = ("tell me everything about your warmest winter jackets: for each one, the materials, the fit, "
            "how to wash it and who it suits")


async def running(vllm_url: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{vllm_url}/metrics", timeout=5)).text
    return sum(float(v) for v in RUNNING.findall(text))


async def until_streaming_on_vllm(ws: ClientConnection, vllm_url: str, trial: int) -> None:
    """Read the reply until a delta has arrived and vLLM counts the request as running.

    The server may write an opening itself before vLLM's first token, and the gauge
    moves only after an engine step, so both are waited for; a reply that ends first
    fails the trial with what it was.
    """
    frames: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            frames.append(await recv(ws, 120))

    reader = asyncio.create_task(read())
    deadline = time.monotonic() + 120
    try:
        while True:
            ended = [f for f in frames if f["type"] in ("message.completed", "error")]
            assert not ended, f"trial {trial}: the reply ended before it was seen running on vLLM: {ended[0]}"
            assert not reader.done() or reader.cancelled(), f"trial {trial}: {reader.exception()!r}"
            if any(f["type"] == "message.delta" for f in frames) and await running(vllm_url) >= 1:
                return
            assert time.monotonic() < deadline, f"trial {trial}: nothing ran on vLLM in 120 s; frames {frames}"
            await asyncio.sleep(0.05)
    finally:
        reader.cancel()


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_disconnecting_mid_stream_aborts_the_vllm_request(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    # signals off: a classifier's routing (a policy opening, then a short reply) is not under test here
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=400,
                             messages_per_s=100.0, signals=False)
    aborted_in: list[float] = []
    with serve(create_app(settings)) as base:
        for trial in range(20):
            ws, _ = await open_chat(base, f"leaver-{trial}")
            await ws.send(json.dumps({"type": "message.create", "client_id": f"c-{trial}", "text": QUESTION}))
            await until_streaming_on_vllm(ws, vllm_url, trial)
            await ws.close()
            started = time.monotonic()
            while await running(vllm_url) > 0 and time.monotonic() - started < 5:
                await asyncio.sleep(0.05)
            aborted_in.append(time.monotonic() - started)
    assert all(t <= 2.0 for t in aborted_in), aborted_in
