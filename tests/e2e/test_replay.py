"""Customer turns of the Twitter customer-care file replayed through the chat socket on real vLLM.

`make test` sends a sample of 60 of the 525 conversations, every ninth one (the file is not ordered by
topic, so the sample spans its complaints, questions and thanks), and the longest one; `make soak` sends
all 525 (606 customer turns). Both send 8 conversations at a time: no crash, no 5xx, every turn answered
(completed, or a fallback) and scored.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import SOAK, data, make_settings, serve, stored_meta
from tests.web.wsclient import ask, open_chat

CONCURRENCY = 8
SAMPLE_EVERY = 9


def customer_turns() -> list[list[str]]:
    dialogs = json.loads((data("twitter_customer_care") / "twitter_customer_care" / "dev.json").read_text())
    return [[t["message"] for t in d["dialogContent"] if "client" in t and str(t.get("message") or "").strip()]
            for d in dialogs]


def replayed(conversations: list[list[str]]) -> list[list[str]]:
    """All of them in `make soak`; else every SAMPLE_EVERY-th, and the one with the most turns."""
    if SOAK:
        return conversations
    longest = max(range(len(conversations)), key=lambda i: len(conversations[i]))
    return [c for i, c in enumerate(conversations) if i % SAMPLE_EVERY == 0 or i == longest]


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_every_replayed_customer_turn_gets_a_reply(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    from web.app import create_app

    every = customer_turns()
    assert len(every) == 525 and sum(len(t) for t in every) == 606
    conversations = replayed(every)
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=16,
                             messages_per_s=100.0, session_burst_per_ip=len(conversations))
    statuses: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def replay(c: int, turns: list[str]) -> None:
        async with gate:
            ws, _ = await open_chat(base, f"twitter-{c}")
            for i, text in enumerate(turns):
                frames = await ask(ws, text[:4000], f"t{c}-{i}")
                done = frames[-1]
                assert done["text"] and done["meta"]["status"] in ("completed", "fallback"), frames[-3:]
                statuses[done["meta"]["status"]] += 1
                mood = stored_meta(factory, done)["signals"]["sentiment"]
                assert mood["label"] in ("negative", "neutral", "positive") and 0 <= mood["negative"] <= 1
                labels[mood["label"]] += 1
            await ws.close()

    with serve(create_app(settings)) as base:
        await asyncio.gather(*(replay(c, turns) for c, turns in enumerate(conversations)))
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    turns = sum(len(t) for t in conversations)
    assert sum(statuses.values()) == turns and len(conversations) >= 59
    # the issue asks for a completed reply or a fallback for every turn; how many complete depends on the
    # machine: on an AVX2-only CPU, 8 concurrent prefills pass the 8 s first-token deadline and the
    # breaker then answers with fallbacks (10 of 606 completed there, against most on a faster CPU)
    assert statuses["completed"] >= 1, statuses
    assert sum(labels.values()) == turns
