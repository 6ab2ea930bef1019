"""What a shopper's socket writes: opening a conversation, behaviour, ratings, asking for a human; and the
one table of the conversation states each action may move between.

Agents' actions (take over, assign, release) are in :mod:`bot.agents`; both move a conversation's state
only through :func:`move`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import crud
from bot.errors import RequestError
from bot.models import Conversation, ConversationState, Event, EventType, Feedback, Message, Product

BOT, AWAITING, AGENT = ConversationState.BOT, ConversationState.AWAITING_AGENT, ConversationState.AGENT
Action = Literal["handoff_request", "take_over", "assign", "release"]

TRANSITIONS: dict[Action, dict[ConversationState, ConversationState]] = {
    "handoff_request": {BOT: AWAITING},  # the shopper asks for a human
    "take_over": {BOT: AGENT, AWAITING: AGENT},  # an agent takes an unowned conversation
    "assign": {BOT: AGENT, AWAITING: AGENT, AGENT: AGENT},  # a supervisor gives it to an agent
    "release": {AGENT: BOT},  # the agent hands it back to the assistant
}
"""Allowed moves, per action: from state -> to state. Anything else is refused (:class:`StateError`)."""

HANDOFF_ASKED = "asked for a human"
"""The flag an explicit handoff request leaves on the conversation (the queue ranks it first)."""


class StateError(RequestError):
    """The conversation's state does not allow that action."""


def can_move(conv: Conversation, action: Action) -> bool:
    return conv.state in TRANSITIONS[action]


def move(conv: Conversation, action: Action) -> ConversationState:
    """Apply ``action`` to the conversation's state; returns the state it left."""
    before = conv.state
    after = TRANSITIONS[action].get(before)
    if after is None:
        raise StateError("bad_state", f"A conversation in state {before.value!r} cannot {action.replace('_', ' ')}.")
    conv.state = after
    return before


@dataclass(frozen=True, slots=True)
class Opened:
    conversation_id: int
    user_id: int
    last_seq: int
    state: str


def open_for_shopper(session: Session, *, external_id: str) -> Opened:
    """The shopper (created on first sight) and their open conversation (a new one if none)."""
    user = crud.get_or_create_user(session, external_id=external_id)
    conv = crud.open_conversation(session, user=user)
    return Opened(conv.id, user.id, conv.last_seq, conv.state.value)


def name_shopper(session: Session, *, external_id: str, name: str) -> None:
    """Remember the name the storefront gives for its signed-in shopper (created on first sight); a forgotten
    shopper stays nameless."""
    user = crud.get_or_create_user(session, external_id=external_id)
    if user.forgotten_at is None:
        user.name = " ".join(name.split())[:100]


def request_handoff(session: Session, *, conversation_id: int) -> bool:
    """The shopper asks for a human: flag the conversation and move it to the queue's top; False (nothing
    changed) when a human already has it or it is already waiting."""
    conv = session.get_one(Conversation, conversation_id, with_for_update=True)
    if not can_move(conv, "handoff_request"):
        return False
    move(conv, "handoff_request")
    conv.flagged_reason = HANDOFF_ASKED
    return True


def record_event(session: Session, *, user_id: int, conversation_id: int, sku: str, event: str) -> None:
    """A product view, click or add-to-cart from the widget."""
    product = session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        raise RequestError("unknown_sku", f"Unknown SKU {sku!r}.")
    session.add(Event(user_id=user_id, product_id=product.id, type=EventType(event),
                      session=f"conv-{conversation_id}"))


def record_feedback(session: Session, *, conversation_id: int, message_id: int, rating: int,
                    reason: str | None) -> None:
    """The shopper's rating of one message of their conversation."""
    msg = session.get(Message, message_id)
    if msg is None or msg.conversation_id != conversation_id:
        raise RequestError("unknown_message", "No such message in this conversation.")
    session.add(Feedback(message_id=msg.id, rating=rating, reason=reason))
