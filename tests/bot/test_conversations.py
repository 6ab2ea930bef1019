"""The conversation-state table and the shopper's writes, against a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import agents, conversations
from bot.conversations import HANDOFF_ASKED, TRANSITIONS, StateError, move
from bot.crud import add_message
from bot.errors import RequestError
from bot.models import Conversation, ConversationState, Event, Feedback, Product, Role

STATES = list(ConversationState)


@pytest.mark.parametrize("action", list(TRANSITIONS))
@pytest.mark.parametrize("state", STATES)
def test_every_state_and_action_is_allowed_only_as_the_table_says(state: ConversationState, action: str) -> None:
    conv = Conversation(user_id=1, state=state)
    allowed = TRANSITIONS[action].get(state)  # type: ignore[index]
    if allowed is None:
        with pytest.raises(StateError) as info:
            move(conv, action)  # type: ignore[arg-type]
        assert info.value.code == "bad_state" and conv.state == state  # unchanged
    else:
        assert move(conv, action) == state and conv.state == allowed  # type: ignore[arg-type]


def test_a_closed_conversation_cannot_change_and_release_only_leaves_an_agent() -> None:
    assert all(ConversationState.CLOSED not in moves for moves in TRANSITIONS.values())
    assert TRANSITIONS["release"] == {ConversationState.AGENT: ConversationState.BOT}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_shopper_writes_and_handoff_go_through_the_table(factory: sessionmaker[Session]) -> None:
    with factory() as session, session.begin():
        opened = conversations.open_for_shopper(session, external_id="shopper-1")
        again = conversations.open_for_shopper(session, external_id="shopper-1")
        assert again.conversation_id == opened.conversation_id and opened.state == "bot"
        session.add(Product(sku="TEST-SOCKS-1", title="Wool socks", description="", category="socks", brand="b",
                            price=9.0, currency="USD", stock=3))
        reply = add_message(session, conversation_id=opened.conversation_id, role=Role.ASSISTANT, text="hi")
        agent = agents.add_agent(session, name="ana", password="ana-pass")
    cid = opened.conversation_id
    with factory() as session, session.begin():
        conversations.record_event(session, user_id=opened.user_id, conversation_id=cid, sku="TEST-SOCKS-1", event="cart")
        conversations.record_feedback(session, conversation_id=cid, message_id=reply.id, rating=1, reason=None)
        for bad in (lambda: conversations.record_event(session, user_id=opened.user_id, conversation_id=cid,
                                                       sku="NOPE", event="view"),
                    lambda: conversations.record_feedback(session, conversation_id=cid, message_id=reply.id + 99,
                                                          rating=-1, reason=None)):
            with pytest.raises(RequestError) as info:
                bad()
            assert info.value.code in ("unknown_sku", "unknown_message")
    with factory() as session, session.begin():
        assert [e.type.value for e in session.scalars(select(Event).where(Event.user_id == opened.user_id))] == ["cart"]
        assert [f.rating for f in session.scalars(select(Feedback).where(Feedback.message_id == reply.id))] == [1]
        assert conversations.request_handoff(session, conversation_id=cid)
        assert not conversations.request_handoff(session, conversation_id=cid)  # already waiting
        conv = session.get_one(Conversation, cid)
        assert conv.state == ConversationState.AWAITING_AGENT and conv.flagged_reason == HANDOFF_ASKED
        agents.take_over(session, conversation_id=cid, agent_id=agent.id)
        assert not conversations.request_handoff(session, conversation_id=cid)  # a human has it already
        assert conv.state == ConversationState.AGENT
        agents.release(session, conversation_id=cid, agent_id=agent.id)
        assert conv.state == ConversationState.BOT and conv.flagged_reason is None
        with pytest.raises(agents.OwnershipError):
            agents.release(session, conversation_id=cid, agent_id=agent.id)  # not theirs any more
