"""Agent assist over real sockets: the shopper panel (profile, signals, mood, orders, products shown,
recommendations) and reply drafts.

The model is scripted (it invents a SKU and a price so that the draft's output checks
show); retrieval, the personalizer, the classifiers and the database are real.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from rapidfuzz.distance import Levenshtein
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.agents import add_agent
from bot.llm.base import GenerationRequest
from bot.llm.scripted import ScriptedBackend
from bot.models import Draft, Role
from retrieval.demo_store import DemoStore
from tests.conftest import make_settings, serve
from tests.web.test_bad_input import messages
from tests.web.wsclient import ask, open_chat, open_console, recv, recv_until
from web.app import create_app


def invent(request: GenerationRequest) -> str:
    """A reply naming the first catalog product at a wrong price and a product that does not exist, then
    referring to the second listed product by its number."""
    system = request.messages[0]["content"]
    sku = system.split("1. [", 1)[1].split("]", 1)[0] if "1. [" in system else "NONE"
    return f"Try [{sku}] for $1.00, or the [ZZ-999999] at $5.00. [2] is another pick."


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_console_shows_the_shopper_and_drafts_a_checked_reply_the_agent_edits(
    tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path, demo_store: DemoStore
) -> None:
    with factory() as session, session.begin():
        add_agent(session, name="ana", password="ana-pass")
    busiest = Counter(e.shopper for e in demo_store.events if e.sku).most_common(1)[0][0]
    llm = ScriptedBackend(invent)
    settings = make_settings(tmp_path, db_url, saved_index, messages_per_s=100.0)
    with serve(create_app(settings, llm=llm)) as base:
        shopper, ready = await open_chat(base, busiest)
        cid = ready["conversation_id"]
        ana, _ = await open_console(base, "ana", "ana-pass")
        await ana.send(json.dumps({"type": "draft.create", "conversation_id": cid}))
        error, _ = await recv_until(ana, "error")
        assert error["code"] == "nothing_to_draft"  # the shopper has not written yet

        await ask(shopper, "this is useless, my order never came and I want a warm jacket", "s-1", timeout=60)
        await ana.send(json.dumps({"type": "conversation.watch", "conversation_id": cid}))
        transcript, _ = await recv_until(ana, "conversation.transcript")
        context = transcript["context"]
        assert context["profile"]["events"] > 0 and context["profile"]["summary"] != "new shopper, no history yet"
        assert context["recommended"] and all(p["sku"] and p["reason"] for p in context["recommended"])
        stored = messages(db_url, cid)[0].meta["signals"]  # the classifier's reading of the message
        assert context["signals"] == stored and stored["sentiment"]["label"] in ("negative", "neutral", "positive")
        assert context["risk"]["negative"] == pytest.approx(stored["sentiment"]["negative"], abs=1e-3)
        assert [p["negative"] for p in context["mood"]] == [pytest.approx(stored["sentiment"]["negative"], abs=1e-3)]
        reply = messages(db_url, cid)[1].meta  # the products the bot showed, in its order, each with why
        assert [p["sku"] for p in context["shown"]] == reply["retrieved_skus"][:6]
        assert context["state"]["shown"] == reply["retrieved_skus"]  # what "the second one" would mean now
        assert "wants: this is useless, my order never came and I want a warm jacket" in context["state"]["summary"]
        assert all(p["title"] and p["reason"] for p in context["shown"])
        theirs = sorted((o for o in demo_store.orders if o.shopper == busiest), key=lambda o: o.at, reverse=True)
        assert context["orders"] and [(o["number"], o["status"]) for o in context["orders"]] == [(o.number, o.status) for o in theirs[:5]]

        await ana.send(json.dumps({"type": "draft.create", "conversation_id": cid}))
        draft, before = await recv_until(ana, "draft.created", 60)
        assert draft["conversation_id"] == cid and draft["products"]
        streamed = [f for f in before if f["type"] in ("draft.started", "draft.delta")]
        assert streamed[0]["type"] == "draft.started" and streamed[0]["products"] == draft["products"]
        assert len(streamed) > 2 and {f["draft_id"] for f in streamed} == {draft["draft_id"]}  # written as it comes
        assert "".join(f["text"] for f in streamed[1:]).strip() == draft["text"]
        first = draft["products"][0]
        assert "ZZ-999999" not in draft["text"] and "$1.00" not in draft["text"]  # checked like a reply
        assert first["sku"] in draft["text"] and draft["meta"]["guard"]
        second = draft["products"][1]  # the reference is written out by the catalog, as in replies
        assert f"{second['title']} ({second['price_text']}) is another pick." in draft["text"]
        assert [m["sku"] for m in draft["meta"]["mentions"]] == [second["sku"]]
        assert llm.requests[-1].messages[-1]["content"].startswith("this is useless")
        with pytest.raises(TimeoutError):  # the shopper sees nothing of the draft
            await recv(shopper, 1.0)

        await ana.send(json.dumps({"type": "conversation.takeover", "conversation_id": cid}))
        await recv_until(ana, "conversation.transcript")
        edited = f"Sorry about your order! {first['title']} is {first['currency']} {first['price']:.2f}."
        for frame, code in [  # a draft from another conversation, or none at all, stores nothing
            ({"draft_id": 999_999}, "unknown_draft"),
            ({"draft_id": 0}, "invalid_frame"),
        ]:
            await ana.send(json.dumps({"type": "message.create", "conversation_id": cid, "client_id": "bad",
                                       "text": edited, **frame}))
            assert (await recv_until(ana, "error"))[0]["code"] == code
        await ana.send(json.dumps({"type": "draft.create", "conversation_id": 999_999}))
        assert (await recv_until(ana, "error"))[0]["code"] == "unknown_conversation"
        await ana.send(json.dumps({"type": "message.create", "conversation_id": cid, "client_id": "a-1",
                                   "text": edited, "draft_id": draft["draft_id"]}))
        said, _ = await recv_until(shopper, "message.created", 10)
        if said["role"] == "system":  # the takeover notice comes first
            said, _ = await recv_until(shopper, "message.created", 10)
        assert said["role"] == "agent" and said["text"] == edited
        for ws in (shopper, ana):
            await ws.close()
    with factory() as session:
        row = session.scalars(select(Draft)).one()
        assert (row.conversation_id, row.suggested_text, row.sent_text) == (cid, draft["text"], edited)
        assert row.agent_id is not None and row.meta["status"] == "completed" and row.meta["prompt"]
        assert row.edit_distance == Levenshtein.distance(draft["text"], edited) > 0
    assert [m.role for m in messages(db_url, cid)].count(Role.AGENT) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_draft_while_the_model_is_down_still_lists_the_products(
    tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path
) -> None:
    with factory() as session, session.begin():
        add_agent(session, name="ana", password="ana-pass")
    llm = ScriptedBackend(lambda _: "fine", fail=False)
    settings = make_settings(tmp_path, db_url, saved_index, signals=False)
    with serve(create_app(settings, llm=llm)) as base:
        shopper, ready = await open_chat(base, "down-draft")
        await ask(shopper, "a non-slip yoga mat", "s-1", timeout=60)
        llm.fail = True
        ana, _ = await open_console(base, "ana", "ana-pass")
        await ana.send(json.dumps({"type": "draft.create", "conversation_id": ready["conversation_id"]}))
        draft, _ = await recv_until(ana, "draft.created", 30)
        assert draft["meta"]["status"] == "fallback" and draft["products"]
        assert draft["products"][0]["title"] in draft["text"]
        for ws in (shopper, ana):
            await ws.close()
