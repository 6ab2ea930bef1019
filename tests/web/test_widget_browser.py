"""The storefront widget in headless Chromium against the real app and the real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import make_engine, session_factory
from bot.models import Event, EventType, Message, Role
from tests.conftest import REPO, make_settings, serve
from web.app import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"


@pytest.mark.browser
@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_widget_streams_a_grounded_reply_with_cards(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    from playwright.sync_api import sync_playwright

    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(create_app(settings)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        page.wait_for_selector(".card h3")  # the storefront lists products
        page.click("[data-aisle=launcher]")
        chat = page.frame_locator("[data-aisle=frame]")
        chat.locator("#status").filter(has_text="online").wait_for(timeout=20_000)
        chat.locator("#input").fill("waterproof running shoes under $100")
        chat.locator("#send").click()
        chat.locator(".msg.shopper").filter(has_text="waterproof running shoes").wait_for()
        card = chat.locator(".cards .card").first
        card.wait_for(timeout=120_000)
        reply = chat.locator(".msg.assistant").last.inner_text()
        assert reply.strip()
        prices = [float(t.split()[-1]) for t in chat.locator(".cards .card .p").all_inner_texts()]
        assert prices and all(x <= 100 for x in prices)
        sku = card.get_attribute("data-sku")
        card.locator("button").click()
        card.locator("button").filter(has_text="Added").wait_for()
        page.screenshot(path=str(ARTIFACTS / "widget-desktop.png"))
        browser.close()
        assert errors == []

    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        texts = [m.text for m in s.scalars(select(Message).order_by(Message.id))]
        roles = [m.role for m in s.scalars(select(Message).order_by(Message.id))]
        carts = s.scalars(select(Event).where(Event.type == EventType.CART, Event.session.like("conv-%"))).all()
    engine.dispose()
    assert roles == [Role.SHOPPER, Role.ASSISTANT] and texts[1].strip() == reply.strip()
    assert len(carts) == 1 and sku
