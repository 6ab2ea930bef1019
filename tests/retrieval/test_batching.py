from __future__ import annotations

import asyncio
import threading

import pytest

from retrieval.batching import MicroBatcher


async def test_concurrent_calls_share_batches_and_keep_their_order() -> None:
    calls: list[int] = []

    def fn(items: list[str]) -> list[str]:
        calls.append(len(items))
        threading.Event().wait(0.02)  # a forward pass takes time; others queue up meanwhile
        return [s.upper() for s in items]

    batcher = MicroBatcher(fn, max_batch=16, max_wait_s=0.005)
    results = await asyncio.gather(*(batcher.submit([f"a{i}", f"b{i}"]) for i in range(32)))
    assert results == [[f"A{i}", f"B{i}"] for i in range(32)]
    assert sum(calls) == 64 and len(calls) <= 8 and max(calls) <= 16
    await batcher.aclose()


async def test_a_failure_reaches_every_waiter_and_the_batcher_recovers() -> None:
    fail = True

    def fn(items: list[str]) -> list[int]:
        if fail:
            raise RuntimeError("model exploded")
        return [len(s) for s in items]

    batcher = MicroBatcher(fn)
    outcomes = await asyncio.gather(batcher.submit(["x"]), batcher.submit(["yy"]), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    fail = False
    assert await batcher.submit(["abc"]) == [3]
    await batcher.aclose()


async def test_a_burst_handed_over_one_by_one_lands_in_one_batch() -> None:
    calls: list[list[str]] = []

    def fn(items: list[str]) -> list[str]:
        calls.append(items)
        return items

    batcher = MicroBatcher(fn, max_wait_s=0.05, max_linger_s=0.5)

    async def arrive(i: int) -> list[str]:
        await asyncio.sleep(0.01 * i)  # each a little after the one before, well inside the pause
        return await batcher.submit([str(i)])

    assert await asyncio.gather(*(arrive(i) for i in range(6))) == [[str(i)] for i in range(6)]
    assert calls == [[str(i) for i in range(6)]]
    await asyncio.sleep(0.2)  # a pause longer than max_wait_s: the next item starts a batch of its own
    assert await batcher.submit(["late"]) == ["late"] and calls[-1] == ["late"]
    await batcher.aclose()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(lambda items: items, max_batch=0)
    with pytest.raises(ValueError):
        MicroBatcher(lambda items: items, max_wait_s=0.01, max_linger_s=0.005)
