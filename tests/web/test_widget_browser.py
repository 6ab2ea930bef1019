"""The storefront widget in headless Chromium against the real app and the real model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.db import make_engine, session_factory
from bot.llm.scripted import ScriptedBackend
from bot.models import Event, EventType, Feedback, Message, Role
from tests.conftest import REPO, make_settings, serve
from tests.e2e.adapter_support import serve_installed
from web.app import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"
BUBBLE_TEXT = "n => Array.from(n.childNodes).filter(c => !(c.classList && c.classList.contains('rate')))" \
              ".map(c => c.textContent).join('')"
"""A reply bubble's text, its product chips included, its rating buttons left out."""


def open_widget(page: Any, base: str, question: str) -> Any:
    """Open the storefront, launch the chat, wait until it is online and ask ``question``; returns the chat frame."""
    page.goto(base + "/")
    page.click("[data-aisle=launcher]")
    chat = page.frame_locator("[data-aisle=frame]")
    chat.locator("#status").filter(has_text="online").wait_for(timeout=20_000)
    chat.locator("#input").fill(question)
    chat.locator("#send").click()
    return chat


@pytest.mark.browser
@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_widget_streams_a_grounded_reply_with_cards(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    from playwright.sync_api import sync_playwright

    serve_installed(factory)  # the default grounding adapter, as `make run` serves it
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=96)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(create_app(settings)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        chat = open_widget(page, base, "waterproof running shoes under $100")
        page.wait_for_selector(".card h3")  # the storefront lists products
        chat.locator(".msg.shopper").filter(has_text="waterproof running shoes").wait_for()
        card = chat.locator(".cards .card").first
        card.wait_for(timeout=120_000)
        chat.locator(".msg.assistant .rate").first.wait_for(timeout=120_000)  # completed
        reply_text = chat.locator(".msg.assistant").last.evaluate(BUBBLE_TEXT)
        assert reply_text.strip()
        cards = {c.get_attribute("data-sku"): (c.locator(".t").inner_text(), c.locator(".p").inner_text())
                 for c in chat.locator(".cards .card").all()}
        assert cards and all(p.startswith("$") and float(p[1:].replace(",", "")) <= 100 for _, p in cards.values())
        # the products the reply names are the catalog's words, shown as chips linked to their cards
        chips = chat.locator(".msg.assistant a.mention")
        assert chips.count() >= 1, reply_text
        for chip in chips.all():
            title, price = cards[chip.get_attribute("data-sku")]
            assert chip.inner_text() in (f"{title} ({price})", title)
        chips_shown = chips.count()
        chips.first.click()
        chat.locator(".cards .card.picked").wait_for(timeout=5_000)
        assert chat.locator(".cards .card.picked").get_attribute("data-sku") == chips.first.get_attribute("data-sku")
        page.screenshot(path=str(ARTIFACTS / "widget-mentions.png"))
        sku = card.get_attribute("data-sku")
        card.locator("button").click()
        card.locator("button").filter(has_text="Added").wait_for()
        chat.locator(".msg.assistant .rate button").first.click()  # thumbs up
        chat.locator(".rate button.chosen").wait_for()
        page.screenshot(path=str(ARTIFACTS / "widget-desktop.png"))
        page.reload()  # mid-conversation: the whole history comes back from the server
        page.click("[data-aisle=launcher]")
        chat = page.frame_locator("[data-aisle=frame]")
        chat.locator(".msg.shopper").filter(has_text="waterproof running shoes").wait_for(timeout=20_000)
        chat.locator(".cards .card").first.wait_for(timeout=20_000)
        assert chat.locator(".msg.assistant").last.evaluate(BUBBLE_TEXT) == reply_text
        assert chat.locator(".msg.assistant a.mention").count() == chips_shown
        assert chat.locator(".typing").count() == 0
        state = page.context.storage_state()  # the same shopper, on a phone
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                          color_scheme=scheme, storage_state=state)
            phone = context.new_page()
            phone.goto(base + "/")
            phone.click("[data-aisle=launcher]")
            frame = phone.frame_locator("[data-aisle=frame]")
            frame.locator(".cards .card").first.wait_for(timeout=20_000)
            width = phone.locator("[data-aisle=frame]").evaluate("f => f.getBoundingClientRect().width")
            assert width == 390  # a full-width sheet on a phone
            phone.screenshot(path=str(ARTIFACTS / f"widget-mobile-{scheme}.png"))
            context.close()
        browser.close()
        assert errors == []

    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        texts = [m.text for m in s.scalars(select(Message).order_by(Message.id))]
        roles = [m.role for m in s.scalars(select(Message).order_by(Message.id))]
        carts = s.scalars(select(Event).where(Event.type == EventType.CART, Event.session.like("conv-%"))).all()
        ratings = [f.rating for f in s.scalars(select(Feedback))]
    engine.dispose()
    assert roles == [Role.SHOPPER, Role.ASSISTANT] and texts[1].strip() == reply_text.strip()
    assert len(carts) == 1 and sku and ratings == [1]


HOSTILE_REPLY = ('Try <img src="https://evil.example/x.png" onerror="alert(1)"> this ![promo](https://evil.example/p.png) '
                 'deal at javascript:alert(2) or <script>window.__pwned = 1</script> '
                 '<iframe src="https://evil.example/frame"></iframe> and <a href="https://evil.example/">click</a>.')


@pytest.mark.browser
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_hostile_model_output_runs_no_script_and_fetches_nothing_outside(
    tmp_path: Path, db_url: str, factory, saved_index: Path  # type: ignore[no-untyped-def]
) -> None:
    """The model's text (scripted here, to carry the payloads) reaches the page inert."""
    from playwright.sync_api import sync_playwright

    settings = make_settings(tmp_path, db_url, saved_index, signals=False)
    with serve(create_app(settings, llm=ScriptedBackend(lambda _: HOSTILE_REPLY))) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        requests: list[str] = []
        dialogs: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        chat = open_widget(page, base, "show me a deal")
        chat.locator(".msg.assistant .rate").first.wait_for(timeout=30_000)
        shown = chat.locator(".msg.assistant").last.evaluate(BUBBLE_TEXT)
        page.wait_for_timeout(500)  # give any injected handler the chance to fire
        pwned = [f.evaluate("() => window.__pwned === undefined ? null : window.__pwned") for f in page.frames]
        elements = chat.locator(".msg.assistant img, .msg.assistant script, .msg.assistant iframe, .msg.assistant a")
        n_elements = elements.count()
        browser.close()
    assert shown.strip() and "<" not in shown and "javascript:" not in shown.lower() and "![" not in shown
    assert dialogs == [] and pwned == [None] * len(pwned) and n_elements == 0
    outside = [u for u in requests if not u.startswith(base)]
    assert outside == [], outside
