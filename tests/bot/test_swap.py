"""Blue/green swaps of the managed vLLM (stand-in servers and a scripted model; the real one is in e2e)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from bot.llm.base import Delta, GenerationRequest, LLMUnavailable, Usage
from bot.llm.managed import ManagedVLLMConfig
from bot.llm.scripted import ScriptedBackend
from bot.llm.swap import SwappingVLLM


class FakeServer:
    """Stands in for a vLLM process: records what it was started on and whether it runs."""

    started: list[FakeServer] = []
    fail_next = False

    def __init__(self, config: ManagedVLLMConfig) -> None:
        self.config = config
        self.running = False
        self.stopped = False

    def start(self) -> str:
        if self.stopped:  # as ManagedVLLM: one server per instance
            raise LLMUnavailable("vLLM was stopped before it started")
        if FakeServer.fail_next:
            FakeServer.fail_next = False
            raise LLMUnavailable("vLLM exited with code 1 during startup")
        self.running = True
        FakeServer.started.append(self)
        return self.config.url

    def stop(self, grace_s: float = 15.0) -> None:
        self.running = False
        self.stopped = True


@pytest.fixture
def swapping(tmp_path: Path) -> SwappingVLLM:
    FakeServer.started = []
    ports = iter(range(9001, 9100))
    merged: list[tuple[Path, str]] = []

    def merge(source: Path, name: str) -> Path:
        merged.append((source, name))
        return tmp_path / "merged" / name

    backend = SwappingVLLM(ManagedVLLMConfig(model_dir=tmp_path / "base", port=9000),
                           connect=lambda url, name: ScriptedBackend(lambda r: f"{name} says hello there", 0.02),
                           merge=merge, port_for=lambda: next(ports), server_class=FakeServer)  # type: ignore[arg-type]
    backend.start()
    return backend


async def reply(backend: SwappingVLLM, model: str | None = None) -> tuple[str, Usage]:
    parts, usage = [], None
    async for item in backend.stream(GenerationRequest(messages=[{"role": "user", "content": "hi"}], model=model)):
        if isinstance(item, Delta):
            parts.append(item.text)
        else:
            usage = item
    assert usage is not None
    return "".join(parts), usage


async def test_a_swap_moves_new_requests_and_lets_streams_finish_on_the_old_server(swapping: SwappingVLLM,
                                                                                   tmp_path: Path) -> None:
    base = FakeServer.started[0]
    assert base.config.served_model_name == "aisle-base" and not base.config.enable_lora
    streaming = asyncio.create_task(reply(swapping))
    await asyncio.sleep(0.03)  # the stream is under way on the base server
    await swapping.load_adapter("grounding", str(tmp_path / "adapter"))
    fresh = FakeServer.started[1]
    assert fresh.config.model_dir == tmp_path / "merged" / "grounding" and fresh.config.port == 9001
    assert (fresh.config.served_model_name, fresh.config.aliases) == ("grounding", ("aisle-base",))
    assert base.running  # its stream is not done
    text, usage = await streaming
    assert text.startswith("aisle-base says") and usage.adapter is None
    await asyncio.sleep(0.01)
    assert not base.running  # stopped once its last stream ended
    text, usage = await reply(swapping, model="an-older-name")  # sent as the live server's model, whatever it says
    assert text.startswith("grounding says") and usage.adapter == "grounding" and swapping.adapter == "grounding"


async def test_going_back_to_the_base_weights_is_a_swap_too(swapping: SwappingVLLM, tmp_path: Path) -> None:
    await swapping.load_adapter("grounding", str(tmp_path / "adapter"))
    await swapping.load_adapter("grounding", str(tmp_path / "adapter"))  # already live: nothing starts
    assert len(FakeServer.started) == 2
    await swapping.unload_adapter("other")  # not the live one: nothing to do
    await swapping.unload_adapter("grounding")
    assert len(FakeServer.started) == 3 and FakeServer.started[2].config.model_dir == tmp_path / "base"
    assert (await reply(swapping))[1].adapter is None
    await swapping.aclose()
    assert not any(s.running for s in FakeServer.started)


async def test_a_server_that_fails_to_start_leaves_the_running_one_serving(swapping: SwappingVLLM,
                                                                          tmp_path: Path) -> None:
    FakeServer.fail_next = True
    with pytest.raises(LLMUnavailable, match="could not start vLLM on grounding"):
        await swapping.load_adapter("grounding", str(tmp_path / "adapter"))
    assert FakeServer.started[0].running and swapping.adapter is None
    assert (await reply(swapping))[0].startswith("aisle-base says")


async def test_closing_during_a_swap_stops_the_server_being_started(swapping: SwappingVLLM, tmp_path: Path) -> None:
    gate = asyncio.Event()
    loop = asyncio.get_running_loop()

    class SlowServer(FakeServer):
        def start(self) -> str:
            self.running = True
            FakeServer.started.append(self)
            loop.call_soon_threadsafe(gate.set)
            while self.running:  # like ManagedVLLM.start polling /health until stop() is called
                time.sleep(0.01)
            raise LLMUnavailable("vLLM was stopped during its startup")

    swapping.server_class = SlowServer  # type: ignore[assignment]
    swap = asyncio.create_task(swapping.load_adapter("grounding", str(tmp_path / "adapter")))
    await gate.wait()
    await swapping.aclose()
    with pytest.raises(LLMUnavailable, match="stopped during its startup"):
        await swap
    assert not any(s.running for s in FakeServer.started)


async def test_closing_during_a_merge_starts_no_server_after_it(swapping: SwappingVLLM, tmp_path: Path) -> None:
    merging, release = threading.Event(), threading.Event()

    def slow_merge(source: Path, name: str) -> Path:
        merging.set()
        release.wait(10)
        return tmp_path / "merged" / name

    swapping.merge = slow_merge
    swap = asyncio.create_task(swapping.load_adapter("grounding", str(tmp_path / "adapter")))
    assert await asyncio.to_thread(merging.wait, 10)
    await swapping.aclose()
    release.set()
    with pytest.raises(LLMUnavailable, match="stopped before it started"):
        await swap
    assert len(FakeServer.started) == 1 and not any(s.running for s in FakeServer.started)
