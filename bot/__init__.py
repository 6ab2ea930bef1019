"""The assistant's domain: settings, data, LLM backends, prompts and the dialogue turn."""

from __future__ import annotations

__all__: list[str] = []
