"""The dispatch gate: a burst leaves together, a lone turn never waits, nobody waits past the cap."""

from __future__ import annotations

import asyncio

import pytest

from bot.llm.gate import DispatchGate


async def test_a_lone_turn_goes_at_once() -> None:
    gate = DispatchGate(5.0)
    assert await gate.ready(gate.enter()) == 0.0 and gate.preparing == 0


async def test_a_burst_leaves_when_its_last_turn_is_ready() -> None:
    gate = DispatchGate(5.0)
    tickets = [gate.enter() for _ in range(3)]
    left: dict[int, float] = {}
    loop = asyncio.get_running_loop()

    async def turn(i: int, work_s: float) -> None:
        await asyncio.sleep(work_s)
        await gate.ready(tickets[i])
        left[i] = loop.time()

    await asyncio.gather(turn(0, 0.0), turn(1, 0.05), turn(2, 0.2))
    assert max(left.values()) - min(left.values()) < 0.03  # the early ones waited for the slow one
    assert gate.preparing == 0


async def test_nobody_waits_past_the_cap_and_a_turn_that_leaves_early_holds_no_one() -> None:
    gate = DispatchGate(0.1)
    stuck, quick = gate.enter(), gate.enter()
    waited = await gate.ready(quick)  # ``stuck`` never gets ready
    assert waited == pytest.approx(0.1, abs=0.05)
    gate.leave(stuck)
    gate.leave(stuck)  # twice is harmless
    assert gate.preparing == 0
    first, dropped = gate.enter(), gate.enter()
    waiting = asyncio.create_task(gate.ready(first))
    await asyncio.sleep(0.01)
    gate.leave(dropped)  # e.g. a resend that needs no reply, or a closed socket
    assert await asyncio.wait_for(waiting, 1.0) < 0.05


def test_a_negative_cap_is_refused() -> None:
    with pytest.raises(ValueError):
        DispatchGate(-1)
