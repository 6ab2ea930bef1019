"""The agents' queue: reasons in words, ranking, who sees what, and live pushes over /ws/agent.

The model is scripted here (signals are off): these tests are about the queue's logic and its
delivery; the signals that feed it on the real model are in tests/e2e/test_signals.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from websockets.asyncio.client import ClientConnection

from bot import crud
from bot.agent_queue import HANDOFF_ASKED, queue, reason_in_words, shopper_handle, visible
from bot.agents import add_agent
from bot.llm.scripted import ScriptedBackend
from bot.models import ConversationState, Role
from tests.conftest import DB_PARAMS, make_settings, serve
from tests.web.wsclient import open_chat, open_console, recv_until
from web.app import create_app

ANGRY = {"sentiment": {"label": "negative", "confidence": 0.9, "negative": 0.93},
         "intent": {"label": "track_order", "confidence": 0.97}}


def test_the_reason_says_what_is_wrong_in_words() -> None:
    said = "this is the third time my package A10023 is late, I'm really angry"
    assert reason_in_words(text=said, signals=ANGRY, risk={"churn": 0.82}, flagged=HANDOFF_ASKED,
                           churn_high=0.7) == "angry about late order A10023; high churn risk; asked for a human"
    unhappy = {"sentiment": {"label": "negative", "confidence": 0.6, "negative": 0.6},
               "intent": {"label": "get_refund", "confidence": 0.9}}
    assert reason_in_words(text="still no refund??", signals=unhappy, risk={"churn": 0.2}, flagged=None,
                           churn_high=0.7) == "unhappy about a refund"
    calm = {"sentiment": {"label": "neutral", "confidence": 0.8, "negative": 0.05},
            "intent": {"label": "track_order", "confidence": 0.9}}
    assert reason_in_words(text="where is my order?", signals=calm, risk={}, flagged=None,
                           churn_high=0.7) == "asking about their order"
    streak = {"churn": 0.3, "rule": "negative_streak", "reason": "negative sentiment on 2 turns in a row"}
    assert reason_in_words(text="the zipper is broken", signals={"sentiment": ANGRY["sentiment"]}, risk=streak,
                           flagged="negative sentiment on 2 turns in a row", churn_high=0.7) == (
        "angry about a damaged item; upset several turns in a row")  # the streak is said once
    assert reason_in_words(text="hi", signals=None, risk={}, flagged=None, churn_high=0.7) == "nothing flagged"


def test_a_shopper_is_shown_by_a_readable_handle() -> None:
    assert shopper_handle("anon-3254f0e9c1d2") == "guest 3254"
    assert shopper_handle("cust-0042") == "cust-0042"
    assert shopper_handle("cust-0042", "Maria Lopez") == "Maria Lopez"  # the storefront's name for them


def _conversation(session: Session, shopper: str, text: str, *, score: float,
                  state: ConversationState = ConversationState.BOT, agent_id: int | None = None) -> int:
    conv = crud.open_conversation(session, user=crud.get_or_create_user(session, external_id=shopper))
    crud.add_message(session, conversation_id=conv.id, role=Role.SHOPPER, text=text)
    conv.risk, conv.state, conv.assigned_agent_id = {"score": score, "churn": 0.5}, state, agent_id
    if state == ConversationState.AWAITING_AGENT:
        conv.flagged_reason = HANDOFF_ASKED
    return conv.id


@pytest.mark.parametrize("db_url", DB_PARAMS, indirect=True)
def test_the_queue_reads_every_row_in_a_fixed_number_of_queries(factory: sessionmaker[Session]) -> None:
    from sqlalchemy import event

    from bot.agent_queue import RECENT, recent_by_conversation

    def build(n: int) -> list[int]:
        with factory() as session, session.begin():
            ids = [_conversation(session, f"anon-q{n}-{i:04d}", "where is my order?", score=0.1 * (i % 5))
                   for i in range(n)]
            for cid in ids[:2]:  # longer than a row reads
                for k in range(RECENT + 5):
                    crud.add_message(session, conversation_id=cid, role=Role.ASSISTANT, text=f"reply {k}")
            return ids

    def statements() -> int:
        engine = factory.kw["bind"]
        seen: list[str] = []
        listener = lambda *a: seen.append(a[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            with factory() as session:
                queue(session, churn_high=0.7, limit=200)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    ids = build(3)
    few = statements()
    build(30)
    assert statements() == few  # 33 conversations cost what 3 did
    with factory() as session:
        got = recent_by_conversation(session, set(ids))
        for cid in ids:
            expected = [m.id for m in crud.recent_messages(session, conversation_id=cid, limit=RECENT)[::-1]]
            assert [m.id for m in got[cid]] == expected
        assert len(got[ids[0]]) == RECENT


@pytest.mark.parametrize("db_url", DB_PARAMS, indirect=True)
def test_an_explicit_request_for_a_human_ranks_first_then_risk_and_agents_see_only_theirs(
        factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        ana = add_agent(session, name="ana", password="pw-ana-1")
        ben = add_agent(session, name="ben", password="pw-ben-1")
        risky = _conversation(session, "anon-11110000", "this is useless", score=0.6)
        asked = _conversation(session, "anon-22220000", "can I talk to a person", score=0.1,
                              state=ConversationState.AWAITING_AGENT)
        calm = _conversation(session, "cust-7", "hello", score=0.0)
        anas = _conversation(session, "anon-33330000", "thanks Ana", score=0.3, state=ConversationState.AGENT,
                             agent_id=ana.id)
        ana_id, ben_id = ana.id, ben.id
    with factory() as session:
        rows = queue(session, churn_high=0.7)
    assert [r.conversation_id for r in rows] == [asked, risky, anas, calm]
    assert rows[0].reason == HANDOFF_ASKED and rows[0].handoff_requested and rows[0].shopper == "guest 2222"
    assert rows[2].agent == "ana" and rows[0].waiting_since is not None
    assert [r.conversation_id for r in rows if visible(r, agent_id=ben_id, role="agent")] == [asked, risky, calm]
    assert [r.conversation_id for r in rows if visible(r, agent_id=ana_id, role="agent")] == [asked, risky, anas, calm]
    assert len([r for r in rows if visible(r, agent_id=ben_id, role="supervisor")]) == 4


async def _next_snapshot(ws: ClientConnection, until: Any) -> dict[str, Any]:
    """Pushed queue snapshots until one satisfies ``until`` (the console never asks)."""
    for _ in range(20):
        snapshot, _ = await recv_until(ws, "queue.snapshot", 10)
        if until(snapshot["conversations"]):
            return snapshot
    raise AssertionError("the queue never showed the change")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_queue_is_pushed_live_and_a_supervisor_reassigns(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path) -> None:
    with factory() as session, session.begin():
        ana_id = add_agent(session, name="ana", password="ana-pass").id
        add_agent(session, name="ben", password="ben-pass")
        add_agent(session, name="sue", password="sue-pass", role="supervisor")
    settings = make_settings(tmp_path, db_url, saved_index, signals=False, messages_per_s=100.0)
    with serve(create_app(settings, llm=ScriptedBackend(lambda _: "Here is what we have."))) as base:
        ana, first = await open_console(base, "ana", "ana-pass")
        sue, _ = await open_console(base, "sue", "sue-pass")
        ben, _ = await open_console(base, "ben", "ben-pass")
        assert first["conversations"] == []
        shopper, ready = await open_chat(base, "anon-5150aaaa")
        cid = ready["conversation_id"]
        await shopper.send(json.dumps({"type": "message.create", "client_id": "s-1", "text": "my order A10023?"}))
        row = (await _next_snapshot(ana, lambda rows: rows and rows[0]["last_message"] == "my order A10023?"))[
            "conversations"][0]
        assert row["shopper"] == "guest 5150" and row["agent"] is None and row["waiting_since"]

        other, _ = await open_chat(base, "anon-6160bbbb")
        await other.send(json.dumps({"type": "handoff.request"}))
        await other.send(json.dumps({"type": "message.create", "client_id": "o-1", "text": "a human please"}))
        ranked = await _next_snapshot(sue, lambda rows: len(rows) == 2 and rows[0]["handoff_requested"])
        assert ranked["conversations"][0]["reason"] == HANDOFF_ASKED
        assert ranked["conversations"][0]["shopper"] == "guest 6160"

        await ana.send(json.dumps({"type": "conversation.assign", "conversation_id": cid, "agent_id": ana_id}))
        refused, _ = await recv_until(ana, "error")
        assert refused["code"] == "forbidden"
        await sue.send(json.dumps({"type": "conversation.assign", "conversation_id": cid, "agent_id": ana_id}))
        joined, _ = await recv_until(shopper, "agent.joined", 10)
        assert joined["agent"] == "ana"
        await _next_snapshot(ana, lambda rows: any(r["conversation_id"] == cid and r["agent"] == "ana" for r in rows))
        await _next_snapshot(sue, lambda rows: any(r["conversation_id"] == cid and r["agent"] == "ana" for r in rows))
        hidden = await _next_snapshot(ben, lambda rows: all(r["conversation_id"] != cid for r in rows))
        assert len(hidden["conversations"]) == 1  # Ben sees the shopper waiting for a human, not Ana's chat

        await ana.send(json.dumps({"type": "message.create", "conversation_id": cid, "client_id": "a-1",
                                   "text": "Hi, Ana here."}))
        said, _ = await recv_until(shopper, "message.created", 10)
        assert said["role"] == "agent"
        await _next_snapshot(ana, lambda rows: any(r["conversation_id"] == cid and r["waiting_since"] is None
                                                   for r in rows))
        await ana.send(json.dumps({"type": "conversation.assign", "conversation_id": cid, "agent_id": 99}))
        assert (await recv_until(ana, "error"))[0]["code"] == "forbidden"
        await sue.send(json.dumps({"type": "conversation.assign", "conversation_id": cid, "agent_id": 99}))
        assert (await recv_until(sue, "error"))[0]["code"] == "unknown_agent"
        for ws in (ana, sue, ben, shopper, other):
            await ws.close()
