"""One dialogue turn: retrieval -> prompt -> stream -> persist. No web imports here.

The turn is an async iterator of typed events; only the transport turns them
into frames. A shopper message is committed before it is acknowledged, and if
the consumer stops iterating (the socket closed) the generation is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from bot import conversations, crud
from bot.churn_risk import ChurnRisk
from bot.config import Settings
from bot.errors import RequestError
from bot.guard import StreamGuard
from bot.llm.base import GenerationRequest, LLMBackend
from bot.llm.gate import DispatchGate, Ticket
from bot.mentions import MentionRenderer
from bot.models import Conversation, ConversationState, Message, Role
from bot.personalize import Personalizer
from bot.policy import HANDOFF_OFFER, Decision, Policy
from bot.prompts import PromptRecord, Turn
from bot.reply_text import ReplyText
from bot.routing import (
    PRICE_MATCH_POLICY,
    REFUSED,
)
from bot.signals import Intent, MessageScorer, MessageSignals, Sentiment
from bot.turn.acts import ActModel
from bot.turn.decide import Grounded, Grounder, GroundingConfig
from bot.turn.language import language_of
from bot.turn.phrase import Clock, Prepared, Streamed, finish_reply, stream_reply
from bot.turn.retrieve import QueryVectors, TurnBatchers
from bot.turn.state import DialogueState, dialogue_state
from bot.turn_events import (
    MessageSaved,
    ReplyFailed,
    ReplyMeta,
    TurnEvent,
)
from retrieval.search import ProductSearch


class TurnRejected(RequestError):
    """The shopper's input cannot start a turn; ``code`` is sent to the client."""


@dataclass(frozen=True)
class DialogueConfig:
    store_name: str = field(default="Aisle Demo Store", metadata={"help": "Name in the prompt."})
    retrieve_k: int = field(default=5, metadata={"help": "Products per turn."})
    history_turns: int = field(default=6, metadata={"help": "Earlier messages in the prompt."})
    max_chars: int = field(default=4000, metadata={"help": "Longest shopper message."})
    max_tokens: int = field(default=160, metadata={"help": "Cap on generated tokens."})
    temperature: float = field(default=0.3, metadata={"help": "Sampling temperature."})
    repetition_penalty: float = field(default=1.1, metadata={"help": "Penalty on repeated tokens."})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter name, or base."})
    policies: Mapping[str, str] = field(default_factory=dict, metadata={"help": "Policy text by topic."})
    price_match: str = field(default=PRICE_MATCH_POLICY,
                             metadata={"help": "What a price-match request is told."})
    link_hosts: tuple[str, ...] = field(default=(), metadata={"help": "The store's own hosts; links elsewhere "
                                                              "are cut from replies."})
    server_answers: bool = field(default=True, metadata={"help": "The server writes the answers it can decide; "
                                                          "off: the model writes every reply."})

    def __post_init__(self) -> None:
        if self.retrieve_k < 1 or self.max_chars < 1 or self.max_tokens < 1:
            raise ValueError("retrieve_k, max_chars and max_tokens must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> DialogueConfig:
        """The turn's configuration as the app serves it."""
        return cls(store_name=settings.store_name, retrieve_k=settings.retrieve_k,
                   history_turns=settings.history_turns, max_chars=settings.max_message_chars,
                   max_tokens=settings.max_tokens, temperature=settings.temperature, adapter=settings.served_adapter,
                   repetition_penalty=settings.repetition_penalty, policies=settings.policies,
                   price_match=settings.price_match_policy, link_hosts=settings.link_host_list,
                   server_answers=settings.server_answers)


def tone(sentiment: Sentiment | None) -> str | None:
    """How the shopper sounds, in words for the prompt."""
    if sentiment is None or sentiment.label != "negative":
        return None
    return f"the shopper sounds {sentiment.coarse()}; acknowledge it briefly and be concrete."


def risk_snapshot(decision: Decision) -> dict[str, Any]:
    """The conversation's risk for the agent queue: churn x P(negative), with the reason."""
    churn, negative = decision.scores.get("churn"), decision.scores.get("negative")
    score = (churn if churn is not None else 0.5) * (negative if negative is not None else 0.0)
    return {"score": round(score, 4), "churn": churn, "negative": negative, "reason": decision.reason,
            "rule": decision.rule}


def ab_bucket(conversation_id: int) -> float:
    """Where a conversation falls in [0, 1) for A/B assignment: the same on every replica and restart."""
    digest = hashlib.sha256(f"aisle-ab:{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Live:
    """``request_for``'s default: the live adapter at the time of the call."""


LIVE = Live()


@dataclass(frozen=True, slots=True)
class _Saved:
    message: Message
    duplicate: bool
    history: list[Message]
    user_id: int
    unanswered: bool
    started_on: str | None  # the adapter the conversation's replies have used so far


def _stored_sentiment(m: Message) -> Sentiment | None:
    s = ((m.meta or {}).get("signals") or {}).get("sentiment")
    return Sentiment(s["label"], s["confidence"], s["negative"]) if s else None


class Dialogue:
    """Runs turns against a database, a product search and an LLM backend."""

    def __init__(
        self,
        *,
        factory: sessionmaker[Session],
        search: ProductSearch,
        llm: LLMBackend,
        config: DialogueConfig,
        personalizer: Personalizer | None = None,
        scorer: MessageScorer | None = None,
        churn: ChurnRisk | None = None,
        policy: Policy | None = None,
        batchers: TurnBatchers | None = None,
        gate: DispatchGate | None = None,
        acts: ActModel | None = None,
    ) -> None:
        self.factory = factory
        self.search = search
        self.llm = llm
        self.config = config
        self.personalizer = personalizer
        self.grounder = Grounder(factory=factory, search=search, personalizer=personalizer, config=GroundingConfig(
            retrieve_k=config.retrieve_k, policies=dict(config.policies), price_match=config.price_match,
            server_answers=config.server_answers), acts=acts)
        self.scorer = scorer
        self.churn = churn
        self.policy = policy
        self.batchers = batchers
        self.gate = gate or DispatchGate(0.0)
        self.adapter = config.adapter  # the LoRA adapter new replies use (None: the base model); hot-swappable
        self.trial: tuple[str, float] | None = None  # an A/B trial: (adapter, share of new conversations)
        self._queries = QueryVectors(search)  # message embeddings, reused as the next turns' context

    def validate(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise TurnRejected("empty_message", "The message is empty.")
        if len(text) > self.config.max_chars:
            raise TurnRejected(
                "message_too_long",
                f"The message has {len(text)} characters; the limit is {self.config.max_chars}.",
            )
        return text

    def record_behaviour(self, *, user_id: int, conversation_id: int, sku: str, event: str) -> None:
        """A product view, click or add-to-cart from the widget: stored, then the shopper's cached churn
        risk is dropped (new behaviour) and the exploration bandit learns from it."""
        with self.factory() as session, session.begin():
            conversations.record_event(session, user_id=user_id, conversation_id=conversation_id, sku=sku,
                                       event=event)
        if self.churn is not None:
            self.churn.invalidate(user_id)
        if self.personalizer is not None:
            self.personalizer.feedback(sku, event)

    def arm(self, conversation_id: int, started_on: str | None) -> str | None:
        """The adapter this conversation's replies use: the one it started on while that is still served
        (live or A/B trial), else the trial for its share of conversations (by a hash of the id, so every
        replica agrees), else the live adapter."""
        served = {self.adapter, self.trial[0] if self.trial else self.adapter}
        if started_on is not None and started_on in served:
            return started_on
        if self.trial is not None and ab_bucket(conversation_id) < self.trial[1]:
            return self.trial[0]
        return self.adapter

    def _save_shopper(self, conversation_id: int, text: str, client_id: str | None) -> _Saved:
        """The stored message, whether it was a resend, the history before it, the user, whether it still
        needs a reply (new, or a resend of one whose turn was cut off before its reply began), and the
        adapter the conversation started on. While an agent owns the conversation, nothing needs a model
        reply."""
        with self.factory() as session, session.begin():
            conv = session.get_one(Conversation, conversation_id)
            user_id, human, started_on = conv.user_id, conv.state == ConversationState.AGENT, conv.adapter
            if client_id and (old := crud.find_by_client_id(
                    session, conversation_id=conversation_id, client_id=client_id)):
                if human or crud.messages_after(session, conversation_id=conversation_id, seq=old.seq):
                    return _Saved(old, True, [], user_id, False, started_on)
                history = crud.recent_messages(
                    session, conversation_id=conversation_id, limit=self.config.history_turns + 1)[:-1]
                return _Saved(old, True, history, user_id, True, started_on)
            history = crud.recent_messages(
                session, conversation_id=conversation_id, limit=self.config.history_turns)
            msg = crud.add_message(session, conversation_id=conversation_id, role=Role.SHOPPER,
                                   text=text, client_id=client_id)
        return _Saved(msg, False, history, user_id, not human, started_on)

    async def classify(self, text: str) -> MessageSignals | None:
        """Intent and sentiment of one message, in a batch shared with concurrent turns (None without
        classifiers)."""
        if self.scorer is None:
            return None
        if self.batchers is not None and self.batchers.signals is not None:
            return (await self.batchers.signals.submit([text]))[0]
        return (await asyncio.to_thread(self.scorer.score, [text]))[0]

    async def _embed(self, text: str) -> np.ndarray | None:
        """The message's embedding, batched with concurrent turns."""
        if self.batchers is None:
            return None
        return (await self.batchers.encode.submit([text]))[0]

    async def ground(self, *, conversation_id: int, user_id: int, text: str, earlier: list[str],
                     intent: Intent | None = None, vector: np.ndarray | None = None,
                     state: DialogueState | None = None) -> Grounded:
        """What an answer to ``text`` rests on, for replies and agents' drafts alike: the route by intent,
        then the order's or the policy's facts, the shown products the message is about, or the products
        retrieved (and personalised) for the message in its context. ``vector``: the message's embedding,
        when the caller already has it; ``state``: the conversation's state before ``text``."""
        if vector is None:
            vector = await self._embed(text)
        query = await self._queries.query(conversation_id, text, vector, earlier, self.batchers)
        state = state or DialogueState()
        g = await asyncio.to_thread(self.grounder.ground, user_id, text, earlier, query, intent, state, vector)
        return replace(g, language=language_of(text, state.language))

    def _decide(self, user_id: int, text: str, signals: MessageSignals | None, history: list[Message]
                ) -> Decision | None:
        """Churn risk (refreshed when this message is negative) and the policy's decision for the turn."""
        if self.policy is None or signals is None:
            return None
        mood = signals.sentiment
        churn = None
        if self.churn is not None:
            negative = self.policy.is_negative(mood)
            if negative:
                self.churn.invalidate(user_id)
            churn = self.churn.score(user_id, complaint=text if negative else None)
        earlier = [_stored_sentiment(m) for m in reversed(history) if m.role == Role.SHOPPER]
        return self.policy.decide(sentiment=mood, earlier=earlier, churn=churn)

    def request_for(self, g: Grounded, turns: Sequence[Turn], text: str, opening: str, *,
                    signals: str | None = None, offer: str | None = None, adapter: str | None | Live = LIVE
                    ) -> tuple[GenerationRequest, PromptRecord]:
        """The generation request for a grounded message (replies and agents' drafts alike), and the
        record it was built from (stored with the reply, for the training export). ``adapter``: the
        conversation's arm (default: the live adapter)."""
        record = PromptRecord(store_name=self.config.store_name, products=g.products, constraint=g.constraint,
                              profile=g.profile, facts=g.facts, signals=signals, offer=offer, opening=opening)
        request = GenerationRequest(
            messages=record.messages(history=turns, text=text),
            max_tokens=self.config.max_tokens, temperature=self.config.temperature,
            model=self.adapter if isinstance(adapter, Live) else adapter,
            repetition_penalty=self.config.repetition_penalty, prefix=opening)
        return request, record

    def reply_meta(self, g: Grounded, request: GenerationRequest, record: PromptRecord, *, reply_to: int,
                   **extra: Any) -> ReplyMeta:
        """The record of a reply (or an agent's draft) grounded on ``g``, before its text is written."""
        return ReplyMeta(
            reply_to=reply_to, model=self.llm.model_name, backend=self.llm.name, adapter=request.model,
            route=g.route, retrieved_skus=[p.sku for p in g.products],
            retrieval_scores=[round(s, 4) for s in g.scores], reasons=g.reasons, filters=g.constraint,
            prompt=record.as_meta(),
            intent={"label": g.intent.label, "confidence": g.intent.confidence} if g.intent else None,
            facts=g.facts, profile=g.profile, act=g.act, focus=g.focus, language=g.language, need=g.need,
            message_act={"label": g.message_act.label, "confidence": g.message_act.confidence}
            if g.message_act else None, **extra)

    def guard_for(self, g: Grounded, text: str, opening: str, offer: str | None = None) -> ReplyText:
        """The output guard and mention renderer of a reply grounded on ``g`` (replies and agents' drafts alike).
        ``offer``: the retention offer the policy made on this turn; no other discount gets through."""
        policy = " ".join([*self.config.policies.values(), offer or "", g.facts or "", opening])
        guard = StreamGuard(g.products, allowed_text=f"{g.facts or ''} {text} {opening}", policy_text=policy,
                            link_hosts=self.config.link_hosts, language=g.language)
        return ReplyText(guard, MentionRenderer(g.products))

    def _save_reply(self, message_id: int, text: str, meta: dict[str, Any]) -> Message:
        with self.factory() as session, session.begin():
            msg = session.get_one(Message, message_id)
            msg.text = text
            msg.meta = meta
        return msg

    def _reserve_reply(self, conversation_id: int, meta: dict[str, Any], shopper_id: int,
                       signals: MessageSignals | None, decision: Decision | None) -> Message:
        """Store the shopper message's scores, the conversation's risk, flag and adapter, and reserve the
        reply row."""
        with self.factory() as session, session.begin():
            if signals is not None:
                shopper = session.get_one(Message, shopper_id)
                shopper.meta = {**(shopper.meta or {}), "signals": signals.as_meta()}
            conv = session.get_one(Conversation, conversation_id)
            if conv.adapter != meta["adapter"]:
                conv.adapter = meta["adapter"]
            if decision is not None:
                conv.risk = risk_snapshot(decision)
                if decision.handoff and not conv.flagged_reason:
                    conv.flagged_reason = decision.reason
            return crud.add_message(session, conversation_id=conversation_id, role=Role.ASSISTANT,
                                    text="", meta=meta)

    async def run_turn(self, *, conversation_id: int, text: str,
                       client_id: str | None = None) -> AsyncGenerator[TurnEvent, None]:
        """Run one turn and yield its events.

        Raises:
            TurnRejected: for an empty or oversized message (nothing is stored).
        """
        text = self.validate(text)
        ticket = self.gate.enter()
        turn = self._turn(conversation_id, text, client_id, ticket)
        try:
            async for event in turn:
                yield event
        finally:
            self.gate.leave(ticket)  # however the turn ended, it no longer holds a burst back
            await turn.aclose()

    async def _turn(self, conversation_id: int, text: str, client_id: str | None,
                    ticket: Ticket) -> AsyncGenerator[TurnEvent, None]:
        """The turn's stages: store the message, prepare the reply, stream it through the guard, finish it."""
        clock = Clock()
        # the message is scored and embedded while it is being stored: none waits for the others
        scoring = asyncio.ensure_future(self.classify(text))
        embedding = asyncio.ensure_future(self._embed(text))
        try:
            saved = await asyncio.to_thread(self._save_shopper, conversation_id, text, client_id)
            shopper, duplicate, history, user_id, unanswered = (saved.message, saved.duplicate, saved.history,
                                                                saved.user_id, saved.unanswered)
            yield MessageSaved(shopper, duplicate)
            if not unanswered:  # a resend of an answered message: the original ack only, no second model call
                return
            clock.mark("store")
            if shopper.text != text:  # a resend with other words: the stored ones count
                scoring.cancel()
                embedding.cancel()
                scoring = asyncio.ensure_future(self.classify(shopper.text))
                embedding = asyncio.ensure_future(self._embed(shopper.text))
            vector, signals = await asyncio.gather(embedding, scoring)
        finally:
            scoring.cancel()
            embedding.cancel()
        turn = await self._prepare(conversation_id, shopper, history, user_id, vector, signals, clock,
                                   self.arm(conversation_id, saved.started_on))
        outcome = Streamed()
        async with contextlib.aclosing(stream_reply(self.llm, self.gate, self._save_reply, turn, ticket,
                                                                 outcome)) as events:  # closed when we are
            async for event in events:
                yield event
        finished = await finish_reply(self._save_reply, turn, outcome)  # stored first: the consumer may stop at any yield below
        if outcome.failure is not None:
            yield ReplyFailed("llm_unavailable", str(outcome.failure))
        yield finished

    async def _prepare(self, conversation_id: int, shopper: Message, history: list[Message], user_id: int,
                       vector: np.ndarray | None, signals: MessageSignals | None, clock: Clock,
                       adapter: str | None) -> Prepared:
        """Ground the message, decide the policy, and build the request and the reply's record."""
        text = shopper.text
        earlier = [m.text for m in history if m.role == Role.SHOPPER]
        clock.mark("embed_classify")
        g, decision = await asyncio.gather(
            self.ground(conversation_id=conversation_id, user_id=user_id, text=text, earlier=earlier,
                        intent=signals.intent if signals else None, vector=vector, state=dialogue_state(history)),
            asyncio.to_thread(self._decide, user_id, text, signals, history))
        offers_human = decision is not None and decision.handoff and g.route not in REFUSED
        opening = (HANDOFF_OFFER if offers_human else "") + g.opening
        turns = [Turn("user" if m.role == Role.SHOPPER else "assistant", m.text)
                 for m in history if m.text and m.role != Role.SYSTEM]
        offer = decision.retention if decision else None
        request, record = self.request_for(g, turns, text, opening,
                                           signals=tone(signals.sentiment if signals else None),
                                           offer=offer, adapter=adapter)
        meta = self.reply_meta(g, request, record, reply_to=shopper.id, latency_ms=clock.latency,
                               signals=signals.as_meta() if signals else None,
                               policy=decision.as_meta() if decision else None)
        # the reply's row is reserved while the request waits at the gate and is on its way
        reserved = asyncio.ensure_future(asyncio.to_thread(
            self._reserve_reply, conversation_id, meta.as_json(), shopper.id, signals, decision))
        return Prepared(g, opening, request, meta, reserved, self.guard_for(g, text, opening, offer), clock)
