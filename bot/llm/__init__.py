"""Generation backends behind one interface, registered by name."""

from __future__ import annotations

from bot.llm.base import Delta, GenerationRequest, LLMBackend, LLMUnavailable, StreamItem, Usage

__all__ = ["Delta", "GenerationRequest", "LLMBackend", "LLMUnavailable", "StreamItem", "Usage"]
