"""A scripted backend for unit tests of orchestration logic (never for user-facing paths)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from bot.llm.base import Delta, GenerationRequest, LLMBackend, LLMUnavailable, StreamItem, Usage

Script = Callable[[GenerationRequest], str]


class ScriptedBackend(LLMBackend):
    """Replies with ``script(request)`` word by word and records every request.

    Args:
        script: maps a request to the reply text.
        delay_s: pause between words.
        fail: when true, every call raises :class:`LLMUnavailable`.
    """

    name = "scripted"
    side_by_side = True

    def __init__(self, script: Script, delay_s: float = 0.0, fail: bool = False) -> None:
        self.script = script
        self.delay_s = delay_s
        self.fail = fail
        self.requests: list[GenerationRequest] = []
        self.cancelled = 0
        self.adapters: dict[str, str] = {}  # name -> path, as vLLM would hold them

    @property
    def model_name(self) -> str:
        return "scripted"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        self.requests.append(request)
        if self.fail:
            raise LLMUnavailable("scripted backend is set to fail")
        words = self.script(request).split(" ")
        done = False
        try:
            for i, word in enumerate(words):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                yield Delta(word if i == 0 else " " + word)
            done = True
        finally:
            if not done:
                self.cancelled += 1
        yield Usage(sum(len(m["content"].split()) for m in request.messages), len(words), "stop", "scripted",
                    adapter=request.model)

    async def health(self) -> bool:
        return not self.fail

    async def load_adapter(self, name: str, path: str) -> None:
        if self.fail:
            raise LLMUnavailable("scripted backend is set to fail")
        self.adapters[name] = path

    async def unload_adapter(self, name: str) -> None:
        if self.fail:
            raise LLMUnavailable("scripted backend is set to fail")
        self.adapters.pop(name, None)
