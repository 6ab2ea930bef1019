"""Agents over real sockets to the real app: login, takeover, replies to the shopper, release.

The model is scripted here (a slow one, so a reply is in flight when the agent takes
over); the same takeover against real vLLM is measured in tests/e2e/test_cancellation.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bot.agents import LegacyScrypt, add_agent, authenticate, hash_password
from bot.llm.scripted import ScriptedBackend
from bot.models import Agent, Role
from tests.conftest import make_settings, serve
from tests.web.test_bad_input import messages
from tests.web.wsclient import (
    agent_token,
    ask,
    new_token,
    open_chat,
    open_console,
    recv,
    recv_until,
    ws_url,
)
from web.app import create_app

LONG = " ".join(["This fleece jacket is warm, light and packs small."] * 40)


def seed_agents(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        add_agent(session, name="ana", password="ana-pass")
        add_agent(session, name="ben", password="ben-pass")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_passwords_are_argon2_and_older_scrypt_hashes_upgrade_on_the_next_login(
        factory: sessionmaker[Session]) -> None:
    a, b = hash_password("secret"), hash_password("secret")
    assert a != b and "secret" not in a and a.startswith("$argon2id$")
    with factory() as session, session.begin():
        add_agent(session, name="new", password="new-pass")
        old = add_agent(session, name="old", password="overwritten-below")
        old.credential_hash = LegacyScrypt().hash("old-pass")  # as stored before argon2
        add_agent(session, name="broken", password="overwritten-below").credential_hash = "plain-text-in-the-db"
    with factory() as session, session.begin():
        assert authenticate(session, name="new", password="New-pass") is None
        assert authenticate(session, name="old", password="Old-pass") is None
        assert authenticate(session, name="broken", password="plain-text-in-the-db") is None
        assert authenticate(session, name="nobody", password="x") is None
    with factory() as session:
        stored = session.scalar(select(Agent.credential_hash).where(Agent.name == "old"))
        assert stored is not None and stored.startswith("scrypt$")  # a failed login changes nothing
    with factory() as session, session.begin():
        assert authenticate(session, name="new", password="new-pass") is not None
        assert authenticate(session, name="old", password="old-pass") is not None
    with factory() as session:
        stored = session.scalar(select(Agent.credential_hash).where(Agent.name == "old"))
        assert stored is not None and stored.startswith("$argon2id$")
    with factory() as session, session.begin():
        assert authenticate(session, name="old", password="old-pass") is not None  # the upgraded hash verifies


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_takeover_stops_the_reply_and_the_agent_answers_until_release(
    tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path
) -> None:
    seed_agents(factory)
    llm = ScriptedBackend(lambda _: LONG, delay_s=0.02)
    settings = make_settings(tmp_path, db_url, saved_index, signals=False, messages_per_s=100.0)
    with serve(create_app(settings, llm=llm)) as base:
        shopper, ready = await open_chat(base, "taken-over")
        cid = ready["conversation_id"]
        await shopper.send(json.dumps({"type": "message.create", "client_id": "s-1", "text": "a warm jacket?"}))
        await recv_until(shopper, "message.delta")  # the reply is streaming

        ana, _ = await open_console(base, "ana", "ana-pass")
        await ana.send(json.dumps({"type": "queue.list"}))
        queue, _ = await recv_until(ana, "queue.snapshot")
        assert cid in [c["conversation_id"] for c in queue["conversations"]]
        await ana.send(json.dumps({"type": "conversation.takeover", "conversation_id": cid}))
        joined, seen = await recv_until(shopper, "agent.joined", 10)
        assert joined["agent"] == "ana"
        interrupted = [f for f in seen if f["type"] == "message.completed"]
        assert interrupted and interrupted[-1]["meta"]["status"] == "interrupted"
        assert any(f["type"] == "message.created" and f["role"] == "system" for f in seen)
        assert llm.cancelled == 1 and len(interrupted[-1]["text"]) < len(LONG)
        transcript, _ = await recv_until(ana, "conversation.transcript")
        assert transcript["state"] == "agent" and transcript["messages"][0]["text"] == "a warm jacket?"

        # while Ana has it: the shopper is acknowledged and heard by her, and the model stays silent
        await shopper.send(json.dumps({"type": "message.create", "client_id": "s-2", "text": "are you a person?"}))
        ack = await recv(shopper, 10)
        assert ack["type"] == "message.created" and ack["client_id"] == "s-2"
        heard, _ = await recv_until(ana, "message.created")
        assert heard["conversation_id"] == cid and heard["text"] == "are you a person?"
        with pytest.raises(TimeoutError):
            await recv(shopper, 1.0)
        assert len(llm.requests) == 1

        for _ in range(2):  # a resend is stored once
            await ana.send(json.dumps({"type": "message.create", "conversation_id": cid, "client_id": "a-1",
                                       "text": "Yes, I'm Ana. Let me help."}))
        said = await recv(shopper, 10)
        assert said["type"] == "message.created" and said["role"] == "agent" and said["text"].startswith("Yes")

        ben, _ = await open_console(base, "ben", "ben-pass")
        for frame, code in [({"type": "conversation.takeover", "conversation_id": cid}, "already_taken"),
                            ({"type": "message.create", "conversation_id": cid, "client_id": "b", "text": "hi"},
                             "not_yours"),
                            ({"type": "conversation.release", "conversation_id": cid}, "not_yours"),
                            ({"type": "conversation.takeover", "conversation_id": 999_999}, "unknown_conversation"),
                            ({"type": "conversation.takeover"}, "invalid_frame")]:
            await ben.send(json.dumps(frame))
            error, _ = await recv_until(ben, "error")
            assert error["code"] == code, (frame, error)

        await ana.send(json.dumps({"type": "conversation.release", "conversation_id": cid}))
        left, _ = await recv_until(shopper, "agent.left", 10)
        assert left["agent"] == "ana"
        frames = await ask(shopper, "thanks, and gloves?", "s-3", timeout=60)  # the assistant is back
        assert frames[-1]["meta"]["status"] == "completed" and len(llm.requests) == 2
        relayed, _ = await recv_until(ana, "message.completed", 10)  # the console gets the reply's whole record
        assert relayed["id"] == frames[-1]["id"] and relayed["meta"]["prompt"] and "prompt" not in frames[-1]["meta"]

        again, _ = await open_chat(base, "taken-over")  # a reload sees the whole story
        await again.send(json.dumps({"type": "resume", "last_seq": 0}))
        history = []
        while len(history) < 8:
            history.append(await recv(again, 10))
        for ws in (shopper, again, ana, ben):
            await ws.close()
    rows = messages(db_url, cid)
    assert [m.role for m in rows] == [Role.SHOPPER, Role.ASSISTANT, Role.SYSTEM, Role.SHOPPER, Role.AGENT,
                                      Role.SYSTEM, Role.SHOPPER, Role.ASSISTANT]
    assert [f["seq"] for f in history] == [m.seq for m in rows]
    assert [f.get("role", "assistant") for f in history] == [m.role.value for m in rows]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_agent_login_and_tokens_are_checked(
    tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path
) -> None:
    seed_agents(factory)
    with factory() as session:
        assert authenticate(session, name="ana", password="wrong") is None
        assert authenticate(session, name="nobody", password="ana-pass") is None
    settings = make_settings(tmp_path, db_url, saved_index, signals=False)
    with serve(create_app(settings, llm=ScriptedBackend(lambda _: "ok"))) as base:
        for body in ({"name": "ana", "password": "nope"}, {"name": "zoe", "password": "ana-pass"}):
            resp = httpx.post(f"{base}/api/agent/login", json=body, timeout=30)
            assert resp.status_code == 401 and "Wrong name or password" in resp.json()["detail"]
        assert httpx.post(f"{base}/api/agent/login", json={"name": "ana"}, timeout=30).status_code == 422
        token = agent_token(base, "ana", "ana-pass")
        agent_url = base.replace("http://", "ws://") + "/ws/agent?token="
        refused = [
            (agent_url + new_token(base, "shopper-x"), None),  # a shopper's token is not an agent's
            (agent_url + token[:-3] + ("xyz" if not token.endswith("xyz") else "abc"), None),
            (agent_url, None),
            (agent_url + token, "https://evil.example"),  # the console's own origin only
            (ws_url(base, token), None),  # an agent's token is not a shopper's
        ]
        for url, origin in refused:
            with pytest.raises(InvalidStatus) as info:
                async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
                    await ws.recv()
            assert info.value.response.status_code == 403, url
        ana, _ = await open_console(base, "ana", "ana-pass")
        for raw, code in (("{not json", "bad_frame"), ("[1]", "bad_frame"),
                          (json.dumps({"type": "conversation.explode"}), "unknown_type"),
                          (json.dumps({"type": "conversation.watch", "conversation_id": "x"}), "invalid_frame")):
            await ana.send(raw)
            error = await recv(ana, 10)
            assert error["type"] == "error" and error["code"] == code, (raw, error)
        await ana.send(json.dumps({"type": "queue.list"}))
        assert (await recv(ana, 10))["type"] == "queue.snapshot"  # the socket survived
        await ana.close()
        assert (await asyncio.to_thread(httpx.get, f"{base}/console", timeout=10)).status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_watching_agent_sees_the_reply_as_it_is_written(
    tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path
) -> None:
    seed_agents(factory)
    settings = make_settings(tmp_path, db_url, saved_index, signals=False)
    with serve(create_app(settings, llm=ScriptedBackend(lambda _: LONG[:400], delay_s=0.01))) as base:
        shopper, ready = await open_chat(base, "watched")
        cid = ready["conversation_id"]
        ana, _ = await open_console(base, "ana", "ana-pass")
        await ana.send(json.dumps({"type": "conversation.watch", "conversation_id": cid}))
        await recv_until(ana, "conversation.transcript")
        shown = await ask(shopper, "a light jacket please", "w-1", timeout=30)
        done, before = await recv_until(ana, "message.completed", 30)
        deltas = [f for f in before if f["type"] == "message.delta" and f["id"] == done["id"]]
        assert len(deltas) > 3 and all(f["conversation_id"] == cid for f in deltas)
        assert "".join(f["text"] for f in deltas) == "".join(f["text"] for f in shown if f["type"] == "message.delta")
        for ws in (shopper, ana):
            await ws.close()
