"""Real customer-care turns (Twitter) replayed through the chat socket: no crash, no 5xx, every turn answered."""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
import pytest

from tests.conftest import SHARED, make_settings, serve
from tests.web.wsclient import ask, open_chat

CONVERSATIONS = 6  # a seeded sample keeps the suite fast; up to 4 customer turns of each are sent


def customer_turns(n: int, seed: int = 0) -> list[list[str]]:
    dialogs = json.loads((SHARED / "data" / "twitter_customer_care" / "dev.json").read_text())
    picked = random.Random(seed).sample(dialogs, n)
    return [[t["message"] for t in d["dialogContent"] if "client" in t and t.get("message")][:4] for d in picked]


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_replayed_customer_turns_all_get_a_reply(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    from web.app import create_app

    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=16)
    answered, statuses, labels = 0, set(), set()
    with serve(create_app(settings)) as base:
        for c, turns in enumerate(customer_turns(CONVERSATIONS)):
            ws, _ = await open_chat(base, f"twitter-{c}")
            for i, text in enumerate(turns):
                frames = await ask(ws, text[:4000], f"t{c}-{i}")
                done = frames[-1]
                assert done["type"] == "message.completed", frames[-3:]
                assert done["text"] and done["meta"]["status"] in ("completed", "fallback")
                statuses.add(done["meta"]["status"])
                mood = done["meta"]["signals"]["sentiment"]
                assert mood["label"] in ("negative", "neutral", "positive") and 0 <= mood["negative"] <= 1
                labels.add(mood["label"])
                answered += 1
            await ws.close()
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    assert answered >= CONVERSATIONS and statuses == {"completed"} and labels
