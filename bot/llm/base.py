"""The one interface every generation backend implements."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


class LLMUnavailable(RuntimeError):
    """The backend could not be reached, timed out, or broke off the stream."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What to generate. ``model`` names a LoRA adapter; ``None`` means the base model."""

    messages: list[dict[str, str]]
    max_tokens: int = 160
    temperature: float = 0.3
    model: str | None = None
    repetition_penalty: float = 1.1
    prefix: str = ""  # the reply's opening, written by the server; the model continues it
    stop: tuple[str, ...] = field(default_factory=tuple)
    min_tokens: int = 0  # no end of sequence before this many tokens (benchmarks that compare equal lengths)

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a generation request needs at least one message")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if not 0 <= self.min_tokens <= self.max_tokens:
            raise ValueError("min_tokens must be between 0 and max_tokens")


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of generated text."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """The last item of every stream: token counts, why generation stopped, and what answered
    (``adapter`` None: the base model)."""

    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    model: str
    adapter: str | None = None


StreamItem = Delta | Usage


async def next_before(items: AsyncIterator[T], deadline: float | None) -> T:
    """The next item; ``TimeoutError`` once the event loop's clock passes ``deadline`` (None: no limit).

    Raises:
        StopAsyncIteration: when ``items`` is exhausted.
    """
    if deadline is None:
        return await anext(items)
    async with asyncio.timeout_at(deadline):
        return await anext(items)


class LLMBackend(ABC):
    """Streams text for chat messages. Closing the iterator early cancels the generation."""

    name: str = "abstract"
    side_by_side: bool = False
    """Whether several loaded adapters are served at once, each by its own name (an A/B trial needs it)."""

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The base model name this backend serves."""

    @abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        """Yield :class:`Delta` items, then exactly one :class:`Usage`.

        Raises:
            LLMUnavailable: when the backend cannot produce the reply.
        """

    @abstractmethod
    async def health(self) -> bool:
        """Whether the backend can serve a request now."""

    async def load_adapter(self, name: str, path: str) -> None:
        """Make the LoRA adapter at ``path`` servable as model ``name`` without a restart.

        Raises:
            LLMUnavailable: when the backend cannot load adapters or refuses this one.
        """
        raise LLMUnavailable(f"the {self.name} backend serves the base model only; LoRA adapters need vLLM")

    async def unload_adapter(self, name: str) -> None:  # noqa: B027 - optional hook
        """Stop serving adapter ``name`` once no new reply asks for it (a no-op where it costs nothing)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections, processes or models."""
