"""The one retry layer and the circuit breaker in front of the model server.

A call that fails before its first token is retried once (nothing was shown
yet); a failure after text has streamed is final. The first token must come
within ``first_token_deadline_s`` of the call, the retry included, so a server
that hangs costs the shopper that long and no more before the fallback reply.
Consecutive failed calls
open the breaker: while it is open, calls fail at once instead of waiting for
timeouts, and after ``reset_after_s`` one trial call is let through; its
success closes the breaker again, so the app recovers without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from bot.llm.base import (
    Delta,
    GenerationRequest,
    LLMBackend,
    LLMUnavailable,
    StreamItem,
    next_before,
)


@dataclass
class CircuitBreaker:
    failures_to_open: int = field(default=3, metadata={"help": "Consecutive failed calls that open it."})
    reset_after_s: float = field(default=10.0, metadata={"help": "Open time before one trial call."})
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    trial_running: bool = False

    def __post_init__(self) -> None:
        if self.failures_to_open < 1 or self.reset_after_s <= 0:
            raise ValueError("failures_to_open must be at least 1 and reset_after_s positive")

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.reset_after_s else "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self.trial_running:
            self.trial_running = True
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self.trial_running = 0, None, False

    def failure(self) -> None:
        self.failures += 1
        self.trial_running = False
        if self.failures >= self.failures_to_open or self.opened_at is not None:
            self.opened_at = self.clock()


class ResilientBackend(LLMBackend):
    """Wraps a backend with one retry (before the first token), a first-token deadline and a circuit breaker."""

    def __init__(self, inner: LLMBackend, breaker: CircuitBreaker | None = None, retries: int = 1,
                 first_token_deadline_s: float | None = None) -> None:
        if first_token_deadline_s is not None and first_token_deadline_s <= 0:
            raise ValueError("first_token_deadline_s must be positive")
        self.inner = inner
        self.breaker = breaker or CircuitBreaker()
        self.retries = retries
        self.first_token_deadline_s = first_token_deadline_s
        self.name = inner.name
        self.side_by_side = inner.side_by_side

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    async def _attempt(self, request: GenerationRequest, deadline: float | None
                       ) -> AsyncGenerator[StreamItem, None]:
        """One call to the inner backend, whose first token must come before ``deadline`` (loop time)."""
        inner = self.inner.stream(request)
        started = False
        try:
            while True:
                try:
                    item = await next_before(inner, None if started else deadline)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise LLMUnavailable(f"no first token within {self.first_token_deadline_s:g} s") from exc
                started = started or isinstance(item, Delta)
                yield item
        finally:
            await inner.aclose()  # closing the HTTP stream is what makes vLLM abort the request

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        if not self.breaker.allow():
            raise LLMUnavailable(f"the model server is failing; circuit open (state {self.breaker.state})")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.first_token_deadline_s if self.first_token_deadline_s else None
        attempt, concluded = 0, False
        try:
            while True:
                started = False
                try:
                    async for item in self._attempt(request, deadline):
                        started = started or isinstance(item, Delta)
                        yield item
                except LLMUnavailable:
                    late = deadline is not None and loop.time() >= deadline
                    if started or attempt >= self.retries or late:
                        concluded = True
                        self.breaker.failure()
                        raise
                    attempt += 1
                    continue
                concluded = True
                self.breaker.success()
                return
        finally:
            if not concluded:  # the caller went away: neither a success nor a failure of the server
                self.breaker.trial_running = False

    async def health(self) -> bool:
        return await self.inner.health()

    async def load_adapter(self, name: str, path: str) -> None:
        await self.inner.load_adapter(name, path)

    async def unload_adapter(self, name: str) -> None:
        await self.inner.unload_adapter(name)

    async def aclose(self) -> None:
        await self.inner.aclose()
