"""One dialogue turn: retrieval -> prompt -> stream -> persist. No web imports here.

The turn is an async iterator of typed events; only the transport turns them
into frames. A shopper message is committed before it is acknowledged, and if
the consumer stops iterating (the socket closed) the generation is cancelled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from bot import crud
from bot.llm.base import Delta, GenerationRequest, LLMBackend, LLMUnavailable, Usage
from bot.models import Conversation, Message, Role
from bot.personalize import Personalizer
from bot.prompts import Turn, build_messages, stock_phrase
from bot.routing import Route, order_grounding, policy_grounding, route
from bot.signals import Intent, IntentClassifier
from retrieval.batching import MicroBatcher
from retrieval.catalog import ProductDoc
from retrieval.search import ProductSearch


@dataclass(frozen=True)
class TurnBatchers:
    """Batch the per-turn model calls of concurrent turns (query embeddings and intents)."""

    encode: MicroBatcher[np.ndarray]
    intent: MicroBatcher[Intent] | None = None

    async def aclose(self) -> None:
        await self.encode.aclose()
        if self.intent is not None:
            await self.intent.aclose()


@dataclass(frozen=True)
class Grounded:
    """What one reply rests on: products (product route) or order/policy facts."""

    products: list[ProductDoc]
    scores: list[float]
    reasons: list[str]
    constraint: str
    profile: str | None
    facts: str | None = None
    opening: str = ""
    intent: Intent | None = None
    route: str = "product"


class TurnRejected(ValueError):
    """The shopper's input cannot start a turn; ``code`` is sent to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


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

    def __post_init__(self) -> None:
        if self.retrieve_k < 1 or self.max_chars < 1 or self.max_tokens < 1:
            raise ValueError("retrieve_k, max_chars and max_tokens must be positive")


@dataclass(frozen=True, slots=True)
class MessageSaved:
    """A message is committed (the shopper's, or a replayed duplicate)."""

    message: Message
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    message_id: int
    text: str


@dataclass(frozen=True, slots=True)
class ReplyFailed:
    """The model could not answer; a fallback reply follows."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class ReplyCompleted:
    message: Message
    products: list[dict[str, Any]]


TurnEvent = MessageSaved | ReplyDelta | ReplyFailed | ReplyCompleted


def product_card(p: ProductDoc) -> dict[str, Any]:
    """What the widget needs to draw a product card."""
    return {
        "sku": p.sku, "title": p.title, "price": p.price, "currency": p.currency,
        "stock": p.stock, "availability": stock_phrase(p.stock), "category": p.category,
        "brand": p.brand, "image_url": p.image_url,
    }


def fallback_text(products: Sequence[ProductDoc]) -> str:
    if not products:
        return "Sorry, I can't answer right now. A human colleague can help you: press 'talk to a human'."
    names = "; ".join(f"{p.title} ({p.currency} {p.price:.2f})" for p in products[:3])
    return (
        f"Sorry, I can't write a full answer right now. These products match your request: {names}. "
        "A human colleague can help you too."
    )


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
        intents: IntentClassifier | None = None,
        batchers: TurnBatchers | None = None,
    ) -> None:
        self.factory = factory
        self.search = search
        self.llm = llm
        self.config = config
        self.personalizer = personalizer
        self.intents = intents
        self.batchers = batchers

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

    def _save_shopper(self, conversation_id: int, text: str, client_id: str | None
                      ) -> tuple[Message, bool, list[Message], int]:
        with self.factory() as session, session.begin():
            user_id = session.get_one(Conversation, conversation_id).user_id
            if client_id and (old := crud.find_by_client_id(
                    session, conversation_id=conversation_id, client_id=client_id)):
                return old, True, [], user_id
            history = crud.recent_messages(
                session, conversation_id=conversation_id, limit=self.config.history_turns)
            msg = crud.add_message(session, conversation_id=conversation_id, role=Role.SHOPPER,
                                   text=text, client_id=client_id)
        return msg, False, history, user_id

    async def _embed_and_classify(self, text: str, earlier: list[str]
                                  ) -> tuple[np.ndarray | None, Intent | None]:
        """Query vector and intent, computed in batches shared with concurrent turns."""
        if self.batchers is None:
            return None, None
        texts = self.search.query_texts(text, earlier)
        vectors, intents = await asyncio.gather(
            self.batchers.encode.submit(texts),
            self.batchers.intent.submit([text]) if self.batchers.intent else asyncio.sleep(0, result=[None]),
        )
        return self.search.combine(np.stack(vectors)), intents[0]

    def _ground(self, user_id: int, text: str, earlier: list[str], query: np.ndarray | None = None,
                intent: Intent | None = None) -> Grounded:
        """Route the message by intent and gather the facts the reply must rest on."""
        if intent is None and self.intents is not None:
            intent = self.intents.predict([text])[0]
        where = route(text, intent.label if intent else None, intent.confidence if intent else 1.0)
        if where.kind == "policy" and where.topic not in self.config.policies:
            where = Route("product")
        if where.kind == "order":
            with self.factory() as session:
                g = order_grounding(session, user_id=user_id, number=where.order_number)
        elif where.kind == "policy":
            g = policy_grounding(str(where.topic), dict(self.config.policies))
        else:
            products, scores, reasons, constraint, profile = self._retrieve(user_id, text, earlier, query)
            return Grounded(products, scores, reasons, constraint, profile, intent=intent)
        return Grounded([], [], [], "", None, facts=g.facts, opening=g.opening, intent=intent, route=where.kind)

    def _retrieve(self, user_id: int, text: str, earlier: list[str], query: np.ndarray | None = None
                  ) -> tuple[list[ProductDoc], list[float], list[str], str, str | None]:
        """Products for the turn with their scores and reasons, the constraint, and the profile."""
        found = self.search.search(text, context=earlier, k=self.config.retrieve_k, query=query)
        scores = [h.score for h in found.hits]
        if self.personalizer is not None:
            best = found.hits[0].score if found.hits else 0.0
            mine = self.personalizer.recommend(user_id, found.query, best, self.config.retrieve_k, found.filters)
            if not mine.profile.cold and mine.recommendations:
                recs = mine.recommendations
                self.personalizer.shown([r.product.sku for r in recs])
                return ([r.product for r in recs], [r.score for r in recs], [r.reason for r in recs],
                        found.filters.describe(), mine.describe())
        return ([h.product for h in found.hits], scores, ["relevance"] * len(scores),
                found.filters.describe(), None)

    def _save_reply(self, message_id: int, text: str, meta: dict[str, Any]) -> Message:
        with self.factory() as session, session.begin():
            msg = session.get_one(Message, message_id)
            msg.text = text
            msg.meta = meta
        return msg

    def _reserve_reply(self, conversation_id: int, meta: dict[str, Any]) -> Message:
        with self.factory() as session, session.begin():
            return crud.add_message(session, conversation_id=conversation_id, role=Role.ASSISTANT,
                                    text="", meta=meta)

    async def run_turn(self, *, conversation_id: int, text: str,
                       client_id: str | None = None) -> AsyncGenerator[TurnEvent, None]:
        """Run one turn and yield its events.

        Raises:
            TurnRejected: for an empty or oversized message (nothing is stored).
        """
        text = self.validate(text)
        shopper, duplicate, history, user_id = await asyncio.to_thread(
            self._save_shopper, conversation_id, text, client_id)
        yield MessageSaved(shopper, duplicate)
        if duplicate:
            return

        started = time.perf_counter()
        earlier = [m.text for m in history if m.role == Role.SHOPPER]
        query, intent = await self._embed_and_classify(text, earlier)
        g = await asyncio.to_thread(self._ground, user_id, text, earlier, query, intent)
        products, profile = g.products, g.profile
        retrieval_ms = (time.perf_counter() - started) * 1000
        turns = [Turn("user" if m.role == Role.SHOPPER else "assistant", m.text)
                 for m in history if m.text and m.role != Role.SYSTEM]
        messages = build_messages(
            store_name=self.config.store_name, history=turns, text=text, products=products,
            constraint=g.constraint, profile=profile, facts=g.facts,
        )
        meta: dict[str, Any] = {
            "status": "streaming",
            "retrieved_skus": [p.sku for p in products],
            "retrieval_scores": [round(s, 4) for s in g.scores],
            "reasons": g.reasons,
            "filters": g.constraint,
            "route": g.route,
            "intent": {"label": g.intent.label, "confidence": g.intent.confidence} if g.intent else None,
            "facts": g.facts,
            "profile": profile,
            "model": self.llm.model_name,
            "adapter": self.config.adapter,
            "backend": self.llm.name,
            "reply_to": shopper.id,
        }
        reply = await asyncio.to_thread(self._reserve_reply, conversation_id, dict(meta))
        request = GenerationRequest(messages=messages, max_tokens=self.config.max_tokens,
                                    temperature=self.config.temperature, model=self.config.adapter,
                                    repetition_penalty=self.config.repetition_penalty, prefix=g.opening)
        parts: list[str] = []
        usage: Usage | None = None
        first_token_ms: float | None = None
        if g.opening:  # the server's own words come first: the real order status or policy
            parts.append(g.opening)
            first_token_ms = (time.perf_counter() - started) * 1000
            yield ReplyDelta(reply.id, g.opening)
        failure: LLMUnavailable | None = None
        stream = self.llm.stream(request)
        try:
            async for item in stream:
                if isinstance(item, Delta):
                    if first_token_ms is None:
                        first_token_ms = (time.perf_counter() - started) * 1000
                    parts.append(item.text)
                    yield ReplyDelta(reply.id, item.text)
                else:
                    usage = item
        except LLMUnavailable as exc:
            failure = exc
        finally:
            await stream.aclose()
            if usage is None and failure is None:  # the consumer went away mid-stream
                meta.update(status="interrupted", partial=True)
                await asyncio.to_thread(self._save_reply, reply.id, "".join(parts), meta)

        if failure is not None:
            yield ReplyFailed("llm_unavailable", str(failure))
            reply_text = g.opening + "A human colleague can help you too." if g.opening else fallback_text(products)
            meta.update(status="fallback", error=str(failure)[:500], partial_text="".join(parts))
        else:
            reply_text = "".join(parts).strip()
            meta.update(status="completed")
        meta.update(
            latency_ms={"retrieval": round(retrieval_ms, 1),
                        "first_token": round(first_token_ms, 1) if first_token_ms else None,
                        "total": round((time.perf_counter() - started) * 1000, 1)},
            tokens={"prompt": usage.prompt_tokens if usage else None,
                    "completion": usage.completion_tokens if usage else None},
            finish_reason=usage.finish_reason if usage else None,
        )
        saved = await asyncio.to_thread(self._save_reply, reply.id, reply_text, meta)
        yield ReplyCompleted(saved, [product_card(p) for p in products])
