"""The CPU default for adapters: merged into the weights of a second managed vLLM, swapped in blue/green.

The adapter swapped in is the demo store's default one, the adapter `make install` registered from
finetune/shipped/grounding/ and `make run` serves merged. It was trained on the `make run` demo store; the
store here is the test store, with other products, so a reply that names a card with its price was not
recalled from training.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Order, User
from tests.conftest import free_port, make_settings, serve, stored_meta
from tests.e2e.adapter_support import QUESTION, installed_adapter, register, served_by
from tests.web.wsclient import ask, open_chat
from web.app import create_app

SHOES = "waterproof running shoes under $100"


def names_with_price(text: str, card: dict[str, object]) -> bool:
    title, price = str(card["title"]), float(card["price"])  # type: ignore[arg-type]
    return title.split(" (")[0].lower() in text.lower() and f"${price:.2f}" in text


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_installed_adapter_is_swapped_in_blue_green_while_a_shopper_chats_and_answers_from_the_catalog(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path) -> None:
    """The CPU default: the managed vLLM serves the adapter merged into its weights, on a second server that
    takes over once it answers; a shopper chatting through the swap gets every reply, none a fallback. Then
    the merged default adapter names a card with its exact price, gives the order's real status and the
    configured policy text. The servers run eager here (no torch.compile), which halves their start; the
    swap is the same."""
    name, path = installed_adapter()
    settings = make_settings(tmp_path, db_url, saved_index, adapter_serving="merged", vllm_port=free_port(),
                             vllm_eager=True, adapter_poll_s=0.3, max_tokens=96,
                             vllm_startup_timeout_s=480, messages_per_s=100.0)
    with factory() as s:
        order, shopper = s.execute(select(Order, User.external_id).join(User, User.id == Order.user_id)
                                   .where(Order.status == "shipped")).first()  # type: ignore[misc]
    app = create_app(settings)
    with serve(app) as base:
        swapping = app.state.aisle.llm.inner
        first_url = swapping.live.managed.config.url
        ws, _ = await open_chat(base, "through-the-swap")
        register(factory, path, name)
        served: list[str | None] = []
        started = time.monotonic()
        while not served or served[-1] is None:  # a question every 2 s until the merged server answers
            served.append(served_by(await ask(ws, QUESTION, f"s{len(served)}")))  # fails on any fallback
            assert time.monotonic() - started < 400, "the swap never happened"
            await asyncio.sleep(2)
        assert len(served) >= 5, "the swap came too soon to show replies flowing through it"
        assert served[-1] == name
        assert httpx.get(f"{base}/healthz", timeout=10).json()["adapter"] == {
            "name": name, "error": None, "trial": None, "trial_error": None}
        new_url = swapping.live.managed.config.url
        models = {m["id"] for m in httpx.get(f"{new_url}/v1/models", timeout=10).json()["data"]}
        assert models == {name, "aisle-base"}
        await asyncio.sleep(1)
        with pytest.raises(httpx.TransportError):  # the first server was stopped once its streams were done
            httpx.get(f"{first_url}/health", timeout=5)
        await ws.close()

        ws, _ = await open_chat(base, shopper)  # a new conversation, as a shopper arriving after the swap

        done = (await ask(ws, SHOES, "g-1"))[-1]
        assert done["meta"]["status"] == "completed" and done["meta"]["adapter"] == name, done["meta"]
        assert not done["text"].startswith("Here is what matches"), "the guard cut the model's reply whole"
        assert any(names_with_price(done["text"], c) for c in done["products"]), (done["text"], done["products"])

        frames = await ask(ws, f"where is my order {order.number}", "g-2")
        first = next(f for f in frames if f["type"] == "message.delta")
        assert order.number in first["text"] and "shipped" in first["text"]
        assert frames[-1]["meta"]["adapter"] == name

        done = (await ask(ws, "how do I return this?", "g-3"))[-1]
        assert done["meta"]["route"] == "policy", stored_meta(factory, done)["intent"]
        assert settings.returns_policy in done["text"]
        await ws.close()
