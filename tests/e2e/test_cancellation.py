"""A shopper who disconnects mid-stream aborts the vLLM request (measured on vLLM's own metric)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings, serve
from tests.web.wsclient import open_chat, recv
from web.app import create_app

RUNNING = re.compile(r"^vllm:num_requests_running\{[^}]*\}\s+([0-9.]+)", re.MULTILINE)


def running(vllm_url: str) -> float:
    text = httpx.get(f"{vllm_url}/metrics", timeout=5).text
    return sum(float(v) for v in RUNNING.findall(text))


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_disconnecting_mid_stream_aborts_the_vllm_request(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=400,
                             messages_per_s=100.0)
    aborted_in: list[float] = []
    with serve(create_app(settings)) as base:
        for trial in range(20):
            ws, _ = await open_chat(base, f"leaver-{trial}")
            await ws.send(json.dumps({"type": "message.create", "client_id": f"c-{trial}",
                                      "text": "tell me everything about your warmest winter jackets"}))
            while (frame := await recv(ws, 120))["type"] != "message.delta":
                assert frame["type"] != "message.completed", frame  # a fallback, not a live stream
            live = time.monotonic()
            while running(vllm_url) < 1 and time.monotonic() - live < 2:  # the metric trails a step
                await asyncio.sleep(0.05)
            assert running(vllm_url) >= 1, f"trial {trial}: no request running on vLLM"
            await ws.close()
            started = time.monotonic()
            while running(vllm_url) > 0 and time.monotonic() - started < 5:
                await asyncio.sleep(0.05)
            aborted_in.append(time.monotonic() - started)
    assert all(t <= 2.0 for t in aborted_in), aborted_in
