"""Benchmarks behind ``aisle bench NAME --json OUT``."""

from __future__ import annotations

__all__: list[str] = []
