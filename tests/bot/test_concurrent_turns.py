"""Concurrent turns: batched embeddings with cached context, and bursts that reach the model together."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np
from sqlalchemy import select

from bot.dialogue import Dialogue, DialogueConfig
from bot.llm.base import GenerationRequest
from bot.llm.gate import DispatchGate
from bot.llm.scripted import ScriptedBackend
from bot.models import Message, Role
from bot.turn.retrieve import TurnBatchers
from bot.turn_events import ReplyCompleted
from retrieval.batching import MicroBatcher
from retrieval.search import ProductSearch
from tests.bot.test_dialogue import collect, first_product_reply, new_conversation


class TimedBackend(ScriptedBackend):
    """Records when each request reached the model."""

    def __init__(self) -> None:
        super().__init__(first_product_reply)
        self.arrivals: list[float] = []

    async def stream(self, request: GenerationRequest):  # type: ignore[no-untyped-def,override]
        self.arrivals.append(time.monotonic())
        async for item in super().stream(request):
            yield item


def batched_dialogue(factory, index, encoder, llm, gate: DispatchGate | None = None,  # type: ignore[no-untyped-def]
                     one_by_one_s: float = 0.0) -> tuple[Dialogue, list[list[str]]]:
    """A dialogue whose query embeddings are batched; with ``one_by_one_s``, one text per batch, that slow."""
    encoded: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        encoded.append(list(texts))
        time.sleep(one_by_one_s)
        return np.asarray(encoder.encode_queries(texts))

    batcher = MicroBatcher(encode, max_batch=1) if one_by_one_s else MicroBatcher(encode)
    dialogue = Dialogue(factory=factory, search=ProductSearch(index, encoder), llm=llm,
                        config=DialogueConfig(store_name="Test Store"), batchers=TurnBatchers(batcher), gate=gate)
    return dialogue, encoded


async def test_a_follow_up_embeds_only_itself_and_keeps_its_context(factory, index, encoder) -> None:  # type: ignore[no-untyped-def]
    dialogue, encoded = batched_dialogue(factory, index, encoder, ScriptedBackend(first_product_reply))
    conv = new_conversation(factory)
    await collect(dialogue, conv, "a warm sleeping bag for winter camping")
    encoded.clear()
    events = await collect(dialogue, conv, "something lighter")
    assert encoded == [["something lighter"]]  # the earlier message's vector came from its own turn
    expected = dialogue.search.query_vector("something lighter", ["a warm sleeping bag for winter camping"])
    found = dialogue.search.search("something lighter", context=["a warm sleeping bag for winter camping"],
                                   query=expected)
    done = events[-1]
    assert isinstance(done, ReplyCompleted)
    assert [p["sku"] for p in done.products] == [h.product.sku for h in found.hits]
    await dialogue.batchers.aclose()  # type: ignore[union-attr]


async def test_a_burst_reaches_the_model_together_and_a_lone_turn_does_not_wait(factory, index, encoder) -> None:  # type: ignore[no-untyped-def]
    llm = TimedBackend()
    # the turns finish preparing 0.1 s apart (their embeddings are computed one at a time)
    dialogue, _ = batched_dialogue(factory, index, encoder, llm, DispatchGate(5.0), one_by_one_s=0.1)
    convs = [new_conversation(factory, f"burst-{i}") for i in range(6)]
    questions = ["a yoga mat", "a quiet blender", "bike lights", "a rain jacket", "a cast iron skillet", "a dog toy"]
    turns = await asyncio.gather(*(collect(dialogue, c, q) for c, q in zip(convs, questions, strict=True)))
    assert all(isinstance(t[-1], ReplyCompleted) for t in turns)
    assert max(llm.arrivals) - min(llm.arrivals) < 0.05  # one wave, though the turns finished preparing apart
    alone = await collect(dialogue, new_conversation(factory, "alone"), "a yoga mat")
    assert isinstance(alone[-1], ReplyCompleted) and alone[-1].message.meta["latency_ms"]["dispatch_wait"] == 0.0
    assert dialogue.gate.preparing == 0
    await dialogue.batchers.aclose()  # type: ignore[union-attr]


async def test_a_turn_cancelled_at_the_gate_leaves_an_interrupted_reply(factory, index, encoder) -> None:  # type: ignore[no-untyped-def]
    llm = TimedBackend()
    gate = DispatchGate(30.0)
    dialogue, _ = batched_dialogue(factory, index, encoder, llm, gate)
    other = gate.enter()  # another turn of the burst that is still preparing
    conv = new_conversation(factory, "leaves-early")
    task = asyncio.create_task(collect(dialogue, conv, "a yoga mat", "c-1"))
    while gate.waiting == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    gate.leave(other)
    assert llm.arrivals == [] and gate.preparing == 0 and gate.waiting == 0
    with factory() as s:
        rows = s.scalars(select(Message).where(Message.conversation_id == conv).order_by(Message.seq)).all()
    assert [m.role for m in rows] == [Role.SHOPPER, Role.ASSISTANT]
    assert rows[1].meta["status"] == "interrupted"  # never left 'streaming' for a resume to replay
    await dialogue.batchers.aclose()  # type: ignore[union-attr]
