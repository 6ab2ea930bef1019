"""Both sockets share one base (web.sockets): the same answers to binary, unparseable and oversized frames.

The model is scripted: these tests are about the transport, not the replies.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bot.agents import add_agent
from bot.llm.scripted import ScriptedBackend
from tests.conftest import make_settings, serve
from tests.web.wsclient import open_chat, open_console, recv
from web.app import create_app

Opener = Callable[[str], Awaitable[tuple[ClientConnection, Any]]]
SOCKETS: dict[str, tuple[Opener, str]] = {  # how to open it, and a frame it answers
    "chat": (lambda base: open_chat(base, "base-test"), json.dumps({"type": "message.create", "client_id": "c-1", "text": "hi"})),
    "agent": (lambda base: open_console(base, "ana", "ana-pass"), json.dumps({"type": "queue.list"})),
}


@pytest.mark.parametrize("socket", list(SOCKETS))
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_both_sockets_answer_bad_frames_alike_and_close_on_oversized_ones(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path, socket: str) -> None:
    with factory() as session, session.begin():
        add_agent(session, name="ana", password="ana-pass")
    settings = make_settings(tmp_path, db_url, saved_index, max_frame_bytes=2_000)
    opener, answered = SOCKETS[socket]
    with serve(create_app(settings, llm=ScriptedBackend(lambda _: "ok"))) as base:
        ws, _ = await opener(base)
        for raw, code in ((b"\x00binary", "bad_frame"), ("{not json", "bad_frame"), ("[1]", "bad_frame"),
                          (json.dumps({"type": "x.explode"}), "unknown_type"),
                          (json.dumps({"type": "resume" if socket == "chat" else "conversation.watch"}),
                           "invalid_frame")):
            await ws.send(raw)
            error = await recv(ws, 10)
            assert error["type"] == "error" and error["code"] == code and error["message"], (socket, raw, error)
        await ws.send(answered)  # still open
        assert (await recv(ws, 10))["type"] != "error"
        await ws.send(json.dumps({"type": "queue.list", "pad": "x" * 3_000}))
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await recv(ws, 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
