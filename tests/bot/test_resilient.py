from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import pytest

from bot.llm.base import Delta, GenerationRequest, LLMBackend, LLMUnavailable, StreamItem, Usage
from bot.llm.resilient import CircuitBreaker, ResilientBackend
from bot.llm.vllm_http import VLLMBackend, VLLMConfig
from tests.conftest import free_port

REQUEST = GenerationRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=4)


class Flaky(LLMBackend):
    """Fails the first ``failures`` calls (before or after its first token), then answers."""

    name = "flaky"

    def __init__(self, failures: int, after_token: bool = False) -> None:
        self.failures, self.after_token, self.calls = failures, after_token, 0

    @property
    def model_name(self) -> str:
        return "flaky"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        self.calls += 1
        if self.after_token:
            yield Delta("partial")
        if self.calls <= self.failures:
            raise LLMUnavailable("down")
        yield Delta("ok")
        yield Usage(1, 1, "stop", "flaky")

    async def health(self) -> bool:
        return self.calls > self.failures


async def drain(backend: LLMBackend) -> list[StreamItem]:
    return [item async for item in backend.stream(REQUEST)]


async def test_one_retry_before_the_first_token_and_none_after() -> None:
    once = Flaky(failures=1)
    items = await drain(ResilientBackend(once))
    assert once.calls == 2 and isinstance(items[-1], Usage)
    twice = Flaky(failures=2)
    with pytest.raises(LLMUnavailable):
        await drain(ResilientBackend(twice))
    assert twice.calls == 2  # exactly one retry layer
    late = Flaky(failures=1, after_token=True)
    with pytest.raises(LLMUnavailable):
        await drain(ResilientBackend(late))
    assert late.calls == 1  # text was shown: no retry


async def test_the_breaker_opens_fails_fast_and_recovers_without_a_restart() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures_to_open=3, reset_after_s=10, clock=lambda: now[0])
    inner = Flaky(failures=6)
    backend = ResilientBackend(inner, breaker, retries=1)
    for _ in range(3):
        with pytest.raises(LLMUnavailable):
            await drain(backend)
    assert breaker.state == "open" and inner.calls == 6
    started = time.perf_counter()
    with pytest.raises(LLMUnavailable, match="circuit open"):
        await drain(backend)
    assert time.perf_counter() - started < 0.1 and inner.calls == 6  # no call reached the server
    now[0] = 11.0  # half-open: one trial call goes through and succeeds
    assert breaker.state == "half_open"
    items = await drain(backend)
    assert isinstance(items[-1], Usage) and breaker.state == "closed"


async def test_a_failed_trial_reopens_the_breaker() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures_to_open=1, reset_after_s=5, clock=lambda: now[0])
    backend = ResilientBackend(Flaky(failures=10), breaker, retries=0)
    with pytest.raises(LLMUnavailable):
        await drain(backend)
    now[0] = 6.0
    with pytest.raises(LLMUnavailable, match="down"):
        await drain(backend)  # the trial
    assert breaker.state == "open"
    with pytest.raises(LLMUnavailable, match="circuit open"):
        await drain(backend)


async def test_a_dead_server_opens_the_breaker_and_then_calls_fail_in_under_100ms() -> None:
    dead = VLLMBackend(VLLMConfig(base_url=f"http://127.0.0.1:{free_port()}", connect_timeout_s=1.0))
    backend = ResilientBackend(dead, CircuitBreaker(failures_to_open=2, reset_after_s=60))
    for _ in range(2):
        with pytest.raises(LLMUnavailable, match="unreachable"):
            await drain(backend)
    for _ in range(20):
        started = time.perf_counter()
        with pytest.raises(LLMUnavailable, match="circuit open"):
            await drain(backend)
        assert time.perf_counter() - started < 0.1
    await backend.aclose()


class Hangs(LLMBackend):
    """Fails fast on the first call, then hangs before its first token (a stopped server)."""

    name = "hangs"

    def __init__(self) -> None:
        self.calls, self.closed = 0, 0

    @property
    def model_name(self) -> str:
        return "hangs"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        self.calls += 1
        try:
            if self.calls == 1:
                raise LLMUnavailable("connection refused")
            await asyncio.sleep(3600)
            yield Delta("never")
        finally:
            self.closed += 1

    async def health(self) -> bool:
        return False


async def test_the_first_token_deadline_covers_the_retry_and_closes_the_hung_call() -> None:
    inner = Hangs()
    backend = ResilientBackend(inner, CircuitBreaker(), retries=1, first_token_deadline_s=0.3)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="no first token within 0.3 s"):
        await drain(backend)
    assert time.monotonic() - started < 0.6  # one deadline for both attempts, not one each
    assert inner.calls == 2 and inner.closed == 2 and backend.breaker.failures == 1
    with pytest.raises(ValueError):
        ResilientBackend(inner, first_token_deadline_s=0)
