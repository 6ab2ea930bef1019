"""Offline jobs that learn from the logged dialogs (export, classifier, LoRA, evaluation)."""

from __future__ import annotations

__all__: list[str] = []
