"""What the chat and conversation benchmarks share: the app as a subprocess (``aisle serve``) in front of a vLLM,
and a shopper's socket to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


@contextmanager
def app_process(home: Path, env: dict[str, str]) -> Iterator[str]:
    """``aisle serve`` with these ``AISLE_*`` settings over the environment, once healthy; yields its base URL.
    Every simulated shopper comes from one address, so the per-IP caps are lifted. Log: ``home/serve.log``."""
    from bot.llm.managed import free_port

    port = free_port()
    env = dict(os.environ, AISLE_HOME=str(home), AISLE_SESSIONS_PER_IP_PER_MIN="100000",
               AISLE_SESSION_BURST_PER_IP="100000", AISLE_SOCKETS_PER_IP="100000", **env)
    log = (home / "serve.log").open("w")
    app = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port)], env=env,
                           stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if app.poll() is not None:
                raise RuntimeError(f"the app exited; see {home / 'serve.log'}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the app did not become healthy")
            time.sleep(0.5)
        yield base
    finally:
        app.terminate()
        app.wait(timeout=30)
        log.close()


async def open_session(base: str, shopper: str) -> Any:
    """A shopper session and its chat socket, past ``session.ready`` (not timed: a session opens once)."""
    from websockets.asyncio.client import connect

    async with httpx.AsyncClient() as client:
        resp = await client.post(f"{base}/api/session", json={"shopper_id": shopper})
        if resp.status_code != 200:
            raise RuntimeError(f"POST /api/session answered {resp.status_code}: {resp.text[:200]}")
        token = resp.json()["token"]
    ws = await connect(base.replace("http", "ws", 1) + f"/ws/chat?token={token}", max_queue=None)
    json.loads(await ws.recv())
    return ws
