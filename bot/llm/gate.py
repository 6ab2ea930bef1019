"""Let the requests of one burst reach the model server together.

When many shoppers write at once, their turns prepare (store, classify,
embed, search) side by side. If the first finished request went straight to
vLLM, the engine would start stepping on it and take the CPU from the turns
still preparing; the rest would then arrive one by one and be prefilled in
small steps. The gate holds a finished request while other turns are still
preparing, for at most ``max_wait_s``, and lets the whole wave go together:
one prefill step for the burst, as if the shoppers had sent their prompts to
vLLM directly. A turn alone never waits.

Event-loop use only (no locks).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass
class Ticket:
    """One turn's place at the gate."""

    done: bool = False


class DispatchGate:
    """Counts the turns preparing a request; :meth:`ready` waits for the others, bounded."""

    def __init__(self, max_wait_s: float = 0.15) -> None:
        if max_wait_s < 0:
            raise ValueError("max_wait_s must be non-negative")
        self.max_wait_s = max_wait_s
        self.preparing = 0
        self.waiting = 0  # turns held at the gate now
        self._wave: asyncio.Event | None = None

    def enter(self) -> Ticket:
        """A turn starts preparing its request."""
        self.preparing += 1
        return Ticket()

    def leave(self, ticket: Ticket) -> None:
        """The turn is done with the gate (its request left, or it needs none); idempotent."""
        if ticket.done:
            return
        ticket.done = True
        self.preparing -= 1
        if self.preparing == 0 and self._wave is not None:
            self._wave.set()  # the last of the wave: everyone goes
            self._wave = None

    async def ready(self, ticket: Ticket) -> float:
        """The turn's request is built: wait until no other turn is preparing, or ``max_wait_s``.

        Returns:
            The seconds waited.
        """
        self.leave(ticket)
        if self.preparing == 0 or self.max_wait_s == 0:
            return 0.0
        wave = self._wave = self._wave or asyncio.Event()
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.waiting += 1
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel (the shopper left)
            with contextlib.suppress(TimeoutError):  # the rest of the wave is slow: go without it
                async with asyncio.timeout(self.max_wait_s):
                    await wave.wait()
        finally:
            self.waiting -= 1
        return loop.time() - start
