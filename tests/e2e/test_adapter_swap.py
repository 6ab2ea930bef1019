"""The CPU default for adapters: merged into the weights of a second managed vLLM, swapped in blue/green."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import free_port, make_settings, serve
from tests.e2e.adapter_support import QUESTION, register, served_by
from tests.web.wsclient import ask, open_chat
from web.app import create_app


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_merged_adapter_is_swapped_in_blue_green_while_a_shopper_chats(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path, tiny_adapter: Path) -> None:
    """The CPU default: the managed vLLM serves the adapter merged into its weights, on a second server that
    takes over once it answers; a shopper chatting through the swap gets every reply, none a fallback.
    The servers run eager here (no torch.compile), which halves their start; the swap is the same."""
    settings = make_settings(tmp_path, db_url, saved_index, adapter_serving="merged", vllm_port=free_port(),
                             vllm_eager=True, adapter_poll_s=0.3, signals=False, max_tokens=24,
                             vllm_startup_timeout_s=480, messages_per_s=100.0)
    app = create_app(settings)
    with serve(app) as base:
        swapping = app.state.aisle.llm.inner
        first_url = swapping.live.managed.config.url
        ws, _ = await open_chat(base, "through-the-swap")
        register(factory, tiny_adapter, "tiny-grounding")
        served: list[str | None] = []
        started = time.monotonic()
        while not served or served[-1] is None:  # a question every 2 s until the merged server answers
            served.append(served_by(await ask(ws, QUESTION, f"s{len(served)}")))  # fails on any fallback
            assert time.monotonic() - started < 400, "the swap never happened"
            await asyncio.sleep(2)
        assert len(served) >= 5, "the swap came too soon to show replies flowing through it"
        assert served[-1] == "tiny-grounding"
        assert httpx.get(f"{base}/healthz", timeout=10).json()["adapter"] == {"name": "tiny-grounding",
                                                                              "error": None}
        new_url = swapping.live.managed.config.url
        models = {m["id"] for m in httpx.get(f"{new_url}/v1/models", timeout=10).json()["data"]}
        assert models == {"tiny-grounding", "aisle-base"}
        await asyncio.sleep(1)
        with pytest.raises(httpx.TransportError):  # the first server was stopped once its streams were done
            httpx.get(f"{first_url}/health", timeout=5)
        await ws.close()
