"""Property-based test of the shopper protocol: send, resend, drop, reconnect and resume, in any order.

Over at least 2,000 steps: no message is stored twice, the conversation's seqs have no gaps or
duplicates, every acknowledged message is in the transcript, and a resent ``client_id`` never
causes a second model call. The model is scripted (this tests the protocol), the sockets are real.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bot.llm.scripted import ScriptedBackend
from tests.conftest import make_settings, serve
from tests.web.wsclient import new_token, ws_url
from web.app import create_app

STEPS = 2000


class ShopperProtocol(RuleBasedStateMachine):
    base: ClassVar[str]
    llm: ClassVar[ScriptedBackend]
    steps: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self.shopper = f"prop-{uuid.uuid4().hex[:8]}"
        self.token = new_token(self.base, self.shopper)
        self.ws: ClientConnection | None = None
        self.sent: dict[str, str] = {}
        self.acked: set[str] = set()
        self.by_seq: dict[int, int] = {}  # seq -> message id, as the client saw them
        self.stored: Counter[str] = Counter()  # client_id -> shopper messages seen with it
        self.seqs: set[int] = set()
        self.last_seq = 0
        self.connect()

    def connect(self) -> None:
        self.ws = connect(ws_url(self.base, self.token))
        ready = json.loads(self.ws.recv(timeout=10))
        assert ready["type"] == "session.ready" and ready["last_seq"] >= self.last_seq
        self.ws.send(json.dumps({"type": "resume", "last_seq": self.last_seq}))

    def send(self, client_id: str) -> None:
        assert self.ws is not None
        self.ws.send(json.dumps({"type": "message.create", "client_id": client_id, "text": self.sent[client_id]}))

    def read(self, timeout: float) -> int:
        """Read frames until the socket is quiet for ``timeout``; returns how many arrived."""
        assert self.ws is not None
        n = 0
        while True:
            try:
                frame: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
            except TimeoutError:
                return n
            n += 1
            if frame["type"] in ("message.created", "message.completed"):
                seen = self.by_seq.setdefault(frame["seq"], frame["id"])
                assert seen == frame["id"], f"seq {frame['seq']} is two messages: {seen} and {frame['id']}"
                if seen == frame["id"] and frame["type"] == "message.created" and frame["seq"] not in self.seqs:
                    self.seqs.add(frame["seq"])
                    self.stored[frame.get("client_id") or ""] += 1
                self.last_seq = max(self.last_seq, frame["seq"])
                if frame.get("client_id"):
                    self.acked.add(frame["client_id"])
            else:
                assert frame["type"] in ("message.delta", "error"), frame

    def step(self) -> None:
        type(self).steps += 1

    @precondition(lambda self: self.ws is not None)
    @rule()
    def send_new(self) -> None:
        client_id = f"m{len(self.sent)}"
        self.sent[client_id] = f"warm socks, message {client_id} of {self.shopper}"
        self.send(client_id)
        self.step()

    @precondition(lambda self: self.ws is not None and self.sent)
    @rule(data=st.data())
    def resend(self, data: st.DataObject) -> None:
        self.send(data.draw(st.sampled_from(sorted(self.sent))))
        self.step()

    @precondition(lambda self: self.ws is not None)
    @rule(quiet=st.sampled_from([0.005, 0.02, 0.08]))
    def read_some(self, quiet: float) -> None:
        self.read(quiet)
        self.step()

    @precondition(lambda self: self.ws is not None)
    @rule(abrupt=st.booleans())
    def drop(self, abrupt: bool) -> None:
        assert self.ws is not None
        if abrupt:
            self.ws.close_socket()  # the network goes away: no close frame
        self.ws.close()
        self.ws = None
        self.step()

    @precondition(lambda self: self.ws is None)
    @rule()
    def reconnect(self) -> None:
        self.connect()
        for client_id in sorted(set(self.sent) - self.acked):  # what the widget does: resend the unacked
            self.send(client_id)
        self.step()

    @invariant()
    def one_model_call_per_message(self) -> None:
        calls = Counter(r.messages[-1]["content"] for r in self.llm.requests if self.shopper in r.messages[-1]["content"])
        assert all(n == 1 for n in calls.values()), calls

    def teardown(self) -> None:
        try:
            if self.ws is None:
                self.reconnect()
            for _ in range(100):  # everything sent is eventually acknowledged
                for client_id in sorted(set(self.sent) - self.acked):
                    self.send(client_id)
                self.read(0.1)
                if self.acked == set(self.sent):
                    break
            assert self.acked == set(self.sent)
            self.ws.close()  # type: ignore[union-attr]
            fresh = ShopperProtocol.__new__(ShopperProtocol)  # a new device replays the whole conversation
            fresh.token, fresh.last_seq, fresh.by_seq, fresh.acked = self.token, 0, {}, set()
            fresh.stored, fresh.seqs = Counter(), set()
            fresh.connect()
            deadline = time.monotonic() + 30
            while max(fresh.by_seq, default=0) < self.last_seq and time.monotonic() < deadline:
                fresh.read(0.5)  # the whole history, however long the server takes to send it
            fresh.read(0.1)
            fresh.ws.close()  # type: ignore[union-attr]
            assert sorted(fresh.by_seq) == list(range(1, len(fresh.by_seq) + 1))  # no gap, no duplicate
            assert fresh.by_seq.items() >= {s: i for s, i in self.by_seq.items()}.items()
            assert fresh.stored == Counter(self.sent.keys())  # each client_id stored exactly once
        except ConnectionClosed as exc:
            raise AssertionError(f"the server closed the socket: {exc}") from exc


@pytest.mark.slow  # 2,000 hypothesis steps, about 100 s
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_send_resend_drop_reconnect_resume(tmp_path: Path, db_url: str, factory, saved_index: Path) -> None:  # type: ignore[no-untyped-def]
    llm = ScriptedBackend(lambda _: "Here are warm wool socks for you.")
    app_settings = make_settings(tmp_path, db_url, saved_index, signals=False, personalize=False,
                                 messages_per_s=1000.0, message_burst=1000, session_burst_per_ip=10_000)
    with serve(create_app(app_settings, llm=llm)) as base:
        ShopperProtocol.base, ShopperProtocol.llm, ShopperProtocol.steps = base, llm, 0
        for _ in range(5):  # hypothesis runs fewer steps than stateful_step_count in some examples: top up
            missing = STEPS - ShopperProtocol.steps
            if missing <= 0:
                break
            run_state_machine_as_test(ShopperProtocol, settings=settings(
                max_examples=max(5, missing // 35), stateful_step_count=50, deadline=None, database=None,
                suppress_health_check=list(HealthCheck)))
    print(f"{ShopperProtocol.steps} steps")
    assert ShopperProtocol.steps >= STEPS, ShopperProtocol.steps
