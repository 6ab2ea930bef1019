"""Two app replicas on one PostgreSQL database act as one: an agent on replica A hears a shopper on
replica B at once, a takeover on A stops the reply B is generating, and A's replies reach the shopper
on B. Fan-out goes through PostgreSQL LISTEN/NOTIFY (web/bus.py).

Each replica here is a whole app with its own event loop, hub, queue feed and bus connection, served
by its own uvicorn; they share nothing but the database. The model is scripted (a slow one on B, so
that a reply is in flight when A takes over).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.agents import add_agent
from bot.llm.base import GenerationRequest
from bot.llm.scripted import ScriptedBackend
from bot.models import Role
from tests.conftest import DB_PARAMS, make_settings, serve
from tests.web.test_bad_input import messages
from tests.web.wsclient import ask, open_chat, open_console, recv_until
from web.app import create_app

LONG = " ".join(["This fleece jacket is warm, light and packs small."] * 40)


def script(request: GenerationRequest) -> str:
    return LONG if "jacket" in request.messages[-1]["content"] else "Our wool gloves come in three sizes."


@pytest.mark.parametrize("db_url", DB_PARAMS[1:], indirect=True)
async def test_an_agent_on_one_replica_works_a_conversation_held_on_another(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path) -> None:
    with factory() as session, session.begin():
        add_agent(session, name="ana", password="ana-pass")
    on_b = ScriptedBackend(script, delay_s=0.02)
    apps = [create_app(make_settings(tmp_path / name, db_url, saved_index, signals=False, messages_per_s=100.0),
                       llm=llm) for name, llm in (("a", ScriptedBackend(script)), ("b", on_b))]
    with serve(apps[0]) as replica_a, serve(apps[1]) as replica_b:
        ana, _ = await open_console(replica_a, "ana", "ana-pass")
        shopper, ready = await open_chat(replica_b, "anon-b0b0b0b0")
        cid = ready["conversation_id"]

        sent = time.monotonic()
        await shopper.send(json.dumps({"type": "message.create", "client_id": "s-1", "text": "a warm jacket?"}))
        while True:  # the queue on A is pushed when B stores the message
            snapshot, _ = await recv_until(ana, "queue.snapshot", 10)
            if any(r["conversation_id"] == cid and r["last_message"] == "a warm jacket?"
                   for r in snapshot["conversations"]):
                break
        assert time.monotonic() - sent < 1.0, "the agent on A saw B's message late"
        await recv_until(shopper, "message.delta")  # B is generating
        await ana.send(json.dumps({"type": "conversation.watch", "conversation_id": cid}))
        await recv_until(ana, "conversation.transcript")

        await ana.send(json.dumps({"type": "conversation.takeover", "conversation_id": cid}))
        joined, seen = await recv_until(shopper, "agent.joined", 10)
        assert joined["agent"] == "ana"
        stopped = [f for f in seen if f["type"] == "message.completed"]
        assert stopped and stopped[-1]["meta"]["status"] == "interrupted" and len(stopped[-1]["text"]) < len(LONG)
        assert on_b.cancelled == 1  # B's request to the model was aborted by A's takeover

        sent = time.monotonic()
        await shopper.send(json.dumps({"type": "message.create", "client_id": "s-2", "text": "are you a person?"}))
        while True:
            heard, _ = await recv_until(ana, "message.created", 10)
            if heard.get("text") == "are you a person?":
                break
        assert heard["conversation_id"] == cid and time.monotonic() - sent < 1.0
        with pytest.raises(TimeoutError):  # B stays silent while Ana (on A) has the chat
            await recv_until(shopper, "message.delta", 1.0)

        await ana.send(json.dumps({"type": "message.create", "conversation_id": cid, "client_id": "a-1",
                                   "text": "Yes, I'm Ana. Let me help."}))
        said, _ = await recv_until(shopper, "message.created", 10)  # delivered by B, sent on A
        assert said["role"] == "agent" and said["text"].startswith("Yes, I'm Ana")
        await ana.send(json.dumps({"type": "conversation.release", "conversation_id": cid}))
        left, _ = await recv_until(shopper, "agent.left", 10)
        assert left["agent"] == "ana"

        frames = await ask(shopper, "and gloves?", "s-3", timeout=60)  # B answers again
        assert frames[-1]["meta"]["status"] == "completed"
        relayed, _ = await recv_until(ana, "message.completed", 10)  # the reply's whole record, on A
        assert relayed["id"] == frames[-1]["id"] and relayed["meta"]["prompt"]["catalog"]
        for ws in (ana, shopper):
            await ws.close()
    assert [m.role for m in messages(db_url, cid)] == [Role.SHOPPER, Role.ASSISTANT, Role.SYSTEM, Role.SHOPPER,
                                                       Role.AGENT, Role.SYSTEM, Role.SHOPPER, Role.ASSISTANT]
