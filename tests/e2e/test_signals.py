"""Signals steer the conversation: two angry messages get a human offered and the chat flagged (real vLLM)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.models import Conversation, Message, Order, Role, User
from bot.policy import HANDOFF_OFFER
from tests.conftest import make_settings, serve, stored_meta
from tests.web.wsclient import ask, open_chat
from web.app import create_app

ANGRY = ("My order is two weeks late and nobody answers my emails. This is ridiculous!",
         "Still nothing. Worst service ever, I am furious and want my money back.")
CHAT_REGISTER = ("my package is late AGAIN, third time this month. unacceptable.",
                 "great, another delay. just great. you guys are useless.")  # the second is sarcastic


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("messages", [ANGRY, CHAT_REGISTER], ids=["review-register", "chat-register-sarcasm"])
async def test_two_angry_messages_offer_a_human_and_flag_the_conversation(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str,  # type: ignore[no-untyped-def]
    messages: tuple[str, str],
) -> None:
    with factory() as s:
        shopper = s.execute(select(User.external_id).join(Order, Order.user_id == User.id)).scalars().first()
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=32,
                             policy_churn_high=0.99)  # only the negative streak can trigger here
    with serve(create_app(settings)) as base:
        ws, ready = await open_chat(base, shopper)
        first = (await ask(ws, messages[0], "a-1"))[-1]
        second = (await ask(ws, messages[1], "a-2"))[-1]
        await ws.close()

    first_meta, second_meta = stored_meta(factory, first), stored_meta(factory, second)
    assert first_meta["signals"]["sentiment"]["label"] == "negative", first_meta["signals"]
    assert not first_meta["policy"]["handoff"] and HANDOFF_OFFER not in first["text"]
    assert second_meta["policy"]["handoff"] and second_meta["policy"]["rule"] == "negative_streak"
    assert second["text"].startswith(HANDOFF_OFFER.strip())
    with factory() as s:
        conv = s.get_one(Conversation, ready["conversation_id"])
        assert conv.flagged_reason == "negative sentiment on 2 turns in a row"
        assert conv.risk["rule"] == "negative_streak" and conv.risk["negative"] >= 0.35
        rows = s.execute(select(Message).where(Message.conversation_id == conv.id).order_by(Message.seq)).scalars()
        by_role: dict[Role, list[Message]] = {}
        for m in rows:
            by_role.setdefault(m.role, []).append(m)
    shoppers, replies = by_role[Role.SHOPPER], by_role[Role.ASSISTANT]
    assert [m.text for m in shoppers] == list(messages)
    for m in shoppers:  # the scores are stored on both shopper messages ...
        assert m.meta["signals"]["sentiment"]["label"] == "negative"
        assert m.meta["signals"]["intent"]["label"]
    for m in replies:  # ... and the decisions, with the scores behind them, on both replies
        assert m.meta["policy"]["scores"]["negative"] >= 0.35 and m.meta["policy"]["scores"]["churn"] is not None
    assert replies[1].meta["policy"]["reason"] == conv.flagged_reason
