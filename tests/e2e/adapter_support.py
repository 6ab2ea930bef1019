"""Helpers shared by the adapter end-to-end tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from bot import adapters
from bot.config import Settings
from bot.db import make_engine, session_factory
from tests.conftest import REPO, make_settings

QUESTION = "a warm winter jacket under $200"


def adapter_dir(root: Path, name: str) -> Path:
    """An adapter directory with the files the registry checks for (empty weights)."""
    path = root / name
    path.mkdir()
    (path / "adapter_config.json").write_text("{}")
    (path / "adapter_model.safetensors").write_bytes(b"")
    return path


def register(factory: sessionmaker[Session], path: Path, name: str, promote: bool = True) -> None:
    with factory() as s, s.begin():
        adapters.register(s, name=name, base_model="SmolLM2-135M-Instruct", path=path, manifest={}, metrics={})
        if promote:
            adapters.promote(s, name=name)


async def until_adapter(base: str, want: str | None, error: bool = False, limit_s: float = 20) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        status = httpx.get(f"{base}/healthz", timeout=10).json()["adapter"]
        if status["name"] == want and (status["error"] is not None) == error:
            return status  # type: ignore[no-any-return]
        assert time.monotonic() - started < limit_s, status
        await asyncio.sleep(0.2)


def settings_for(home: Path, db_url: str, saved_index: Path, vllm_url: str, **overrides: object) -> Settings:
    """An app on the session's runtime-LoRA vLLM that notices registry changes within a third of a second."""
    return make_settings(home, db_url, saved_index, **{
        "vllm_url": vllm_url, "adapter_poll_s": 0.3, "signals": False, "max_tokens": 48, "messages_per_s": 100.0,
        **overrides})


async def until_trial(base: str, want: str | None, limit_s: float = 20) -> None:
    """Wait until /healthz names ``want`` as the A/B trial (None: no trial)."""
    started = time.monotonic()
    while (trial := httpx.get(f"{base}/healthz", timeout=10).json()["adapter"]["trial"]) != want and not (
            trial and trial["name"] == want):
        assert time.monotonic() - started < limit_s, trial
        await asyncio.sleep(0.2)


def served_by(frames: list[dict[str, Any]]) -> str | None:
    done = frames[-1]
    assert done["type"] == "message.completed" and done["meta"]["status"] == "completed", done
    return done["meta"]["adapter"]  # type: ignore[no-any-return]


def installed_adapter() -> tuple[str, Path]:
    """The live adapter in the registry of the home that `make install` prepared."""
    engine = make_engine(Settings(home=REPO / "var").db_url)
    with session_factory(engine)() as s:
        row = adapters.live(s)
    engine.dispose()
    assert row is not None, "make install registers the shipped grounding adapter (aisle finetune bootstrap)"
    return row.name, Path(row.path)


def serve_installed(factory: sessionmaker[Session]) -> str:
    """Make the adapter `make install` registered live in this test's registry; returns its name."""
    name, path = installed_adapter()
    register(factory, path, name)
    return name
