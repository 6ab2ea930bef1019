"""No acknowledged message is lost when the server is killed with SIGKILL at random points.

A real ``aisle serve`` process on SQLite (WAL, synchronous=FULL) takes 240 messages (1,000 in
`make soak`) from a client that resends whatever was not acknowledged after each reconnect; the
server is killed 6 times (20) along the way, each time while a window of messages is in flight,
and restarted. The model server is down on purpose: every turn gets the
fallback reply fast, which keeps the test on the storage path rather than on generation speed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import CLASSIFIERS, REPO, free_port, volume
from tests.web.wsclient import ws_url

MESSAGES, KILLS, WINDOW = volume(240, 1000), volume(6, 20), 8
KILL_AFTER = volume(30, 80)  # a life's kill comes after 5 to KILL_AFTER acknowledgements: always before the end


class Server:
    def __init__(self, home: Path, db_url: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = home / "server.log"
        self.env = {**os.environ, "AISLE_HOME": str(home), "AISLE_DATABASE_URL": db_url,
                    "AISLE_VLLM_URL": "http://127.0.0.1:9", "AISLE_SIGNALS": "false", "AISLE_PERSONALIZE": "false",
                    "AISLE_CLASSIFIER_DIR": str(CLASSIFIERS), "AISLE_SECRET_KEY": "durability",
                    "AISLE_MESSAGES_PER_S": "10000", "AISLE_MESSAGE_BURST": "10000"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(self.port)],
                                         cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                httpx.get(f"{self.base}/healthz", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


async def one_life(server: Server, token: str, todo: list[str], acked: set[str],
                   kill_at: tuple[int, float] | None) -> None:
    """Send until everything is acknowledged or the server dies under us.

    ``kill_at`` = (acknowledgements, seconds): the server is killed that long after this life's
    n-th acknowledgement, while the next messages of the window are in flight.
    """
    unacked = [c for c in todo if c not in acked]
    before = len(acked)
    killer: asyncio.TimerHandle | None = None
    try:
        async with connect(ws_url(server.base, token)) as ws:
            assert json.loads(await ws.recv())["type"] == "session.ready"
            sent = 0
            while unacked:
                while sent < len(unacked) and sent - sum(c in acked for c in unacked[:sent]) < WINDOW:
                    await ws.send(json.dumps({"type": "message.create", "client_id": unacked[sent],
                                              "text": f"show me warm socks ({unacked[sent]})"}))
                    sent += 1
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if frame["type"] == "message.created" and frame.get("client_id"):
                    acked.add(frame["client_id"])
                    if kill_at is not None and killer is None and len(acked) - before >= kill_at[0]:
                        killer = asyncio.get_running_loop().call_later(kill_at[1], server.kill)
                    if all(c in acked for c in unacked):
                        break
    except (ConnectionClosed, OSError):
        assert kill_at is not None, "the connection broke without a kill"
    finally:
        if killer is not None:
            killer.cancel()


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_no_acknowledged_message_is_lost_across_sigkills(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    from bot.models import Message

    shutil.copytree(saved_index, tmp_path / "index")
    server = Server(tmp_path, db_url)
    rng = random.Random(7)
    todo = [f"d-{i:04d}" for i in range(MESSAGES)]
    acked: set[str] = set()
    progress = []
    for life in range(KILLS + 1):
        await asyncio.to_thread(server.start)
        if life == 0:
            token = httpx.post(f"{server.base}/api/session", json={"shopper_id": "durable"}, timeout=10).json()["token"]
        kill_at = (rng.randint(5, KILL_AFTER), rng.uniform(0.0, 0.05)) if life < KILLS else None
        await one_life(server, token, todo, acked, kill_at)
        progress.append(len(acked))
        if life == KILLS:
            server.kill()
    assert len(acked) == MESSAGES and progress[KILLS - 1] < MESSAGES  # the kills landed while sending
    engine = create_engine(db_url)
    with Session(engine) as session:
        stored = session.scalars(select(Message.client_id).where(Message.client_id.is_not(None))).all()
    engine.dispose()
    assert sorted(stored) == todo  # every acknowledged message, each once
