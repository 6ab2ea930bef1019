"""Order and policy questions are answered from the orders table and the settings (real vLLM)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.models import Order, User
from tests.conftest import make_settings, serve, stored_meta
from tests.web.wsclient import ask, open_chat
from web.app import create_app


@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_where_is_my_order_and_how_do_i_return(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    with factory() as s:
        order, shopper = s.execute(select(Order, User.external_id).join(User, User.id == Order.user_id)
                                   .where(Order.status == "shipped")).first()  # type: ignore[misc]
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=40)
    with serve(create_app(settings)) as base:
        ws, _ = await open_chat(base, shopper)
        frames = await ask(ws, f"where is my order {order.number}", "o-1")
        done = frames[-1]
        first = next(f for f in frames if f["type"] == "message.delta")
        assert order.number in first["text"] and "shipped" in first["text"]
        assert done["text"].startswith(first["text"].strip()) and done["products"] == []
        assert done["meta"]["route"] == "order" and "status shipped" in stored_meta(factory, done)["facts"]

        frames = await ask(ws, "how do I return this?", "o-2")
        done = frames[-1]
        intent = stored_meta(factory, done)["intent"]
        assert done["meta"]["route"] == "policy", intent
        assert settings.returns_policy in done["text"]
        assert intent["label"] == "return_item"
        await ws.close()
