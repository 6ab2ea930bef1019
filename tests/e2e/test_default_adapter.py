"""The grounding adapter that `make install` builds is live by default, and a fresh app serves it (real vLLM).

The adapter was trained on the `make run` demo store; the store here is the test store, with other products,
so a reply that names a card with its price was not recalled from training.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import adapters
from bot.config import Settings
from bot.db import make_engine, session_factory
from bot.models import Order, User
from tests.conftest import REPO, free_port, make_settings, serve, stored_meta
from tests.e2e.adapter_support import register
from tests.web.wsclient import ask, open_chat
from web.app import create_app

QUESTION = "waterproof running shoes under $100"


def installed_adapter() -> tuple[str, Path]:
    """The live adapter in the registry of the home that `make install` prepared."""
    engine = make_engine(Settings(home=REPO / "var").db_url)
    with session_factory(engine)() as s:
        row = adapters.live(s)
    engine.dispose()
    assert row is not None, "make install trains and promotes a grounding adapter (aisle finetune bootstrap)"
    return row.name, Path(row.path)


def names_with_price(text: str, card: dict[str, object]) -> bool:
    title, price = str(card["title"]), float(card["price"])  # type: ignore[arg-type]
    return title.split(" (")[0].lower() in text.lower() and f"${price:.2f}" in text


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_installed_adapter_is_served_and_its_reply_names_a_card_with_its_price(
        tmp_path: Path, db_url: str, factory: sessionmaker[Session], saved_index: Path) -> None:
    name, path = installed_adapter()
    register(factory, path, name)
    settings = make_settings(tmp_path, db_url, saved_index, adapter_serving="merged", vllm_port=free_port(),
                             vllm_eager=True, vllm_startup_timeout_s=480, messages_per_s=100.0)
    with factory() as s:
        order, shopper = s.execute(select(Order, User.external_id).join(User, User.id == Order.user_id)
                                   .where(Order.status == "shipped")).first()  # type: ignore[misc]
    with serve(create_app(settings)) as base:
        ws, _ = await open_chat(base, shopper)
        done = (await ask(ws, QUESTION, "g-1"))[-1]
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
