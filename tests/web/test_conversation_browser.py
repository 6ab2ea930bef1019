"""A conversation in the widget, on the real model: follow-ups about the cards are answered from the catalog and the
conversation's state, and a complaint gets the shopper's own order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from retrieval.demo_store import DemoStore
from tests.conftest import make_settings, serve
from tests.e2e.adapter_support import serve_installed
from tests.web.test_widget_browser import ARGS, ARTIFACTS, BUBBLE_TEXT, CHROMIUM, open_widget
from web.app import create_app


def completed(chat: Any, n: int) -> str:
    """The text of the n-th assistant reply (0-based), once it has completed."""
    chat.locator(".msg.assistant .rate").nth(n).wait_for(timeout=120_000)
    return str(chat.locator(".msg.assistant").nth(n).evaluate(BUBBLE_TEXT))


def ask(chat: Any, text: str, n: int) -> str:
    chat.locator("#input").fill(text)
    chat.locator("#send").click()
    return completed(chat, n)


def chip_skus(chat: Any, n: int) -> list[str]:
    return [str(c.get_attribute("data-sku")) for c in chat.locator(".msg.assistant").nth(n).locator("a.mention").all()]


def card_skus(chat: Any, n: int) -> list[str]:
    return [str(c.get_attribute("data-sku")) for c in chat.locator("li.cards").nth(n).locator(".card").all()]


@contextmanager
def storefront(tmp_path: Path, db_url: str, factory: Any, saved_index: Path, vllm_url: str) -> Iterator[tuple[Any, str]]:
    """The app on the real model with the installed adapter, and a desktop page in Chromium; yields both."""
    from playwright.sync_api import sync_playwright

    serve_installed(factory)
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=96)
    with serve(create_app(settings)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900}), base
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_follow_ups_about_the_cards_are_answered_from_the_catalog(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str, demo_store: DemoStore  # type: ignore[no-untyped-def]
) -> None:
    products = {p.sku: p for p in demo_store.products}
    with storefront(tmp_path, db_url, factory, saved_index, vllm_url) as (page, base):
        chat = open_widget(page, base, "waterproof hiking boots under $120")
        completed(chat, 0)
        cards = card_skus(chat, 0)
        assert len(cards) >= 2 and all(products[s].price <= 120 for s in cards)
        first, second = products[cards[0]], products[cards[1]]

        reply = ask(chat, "is the first one in stock?", 1)
        assert chip_skus(chat, 1) == [first.sku], reply
        assert ("is in stock" in reply) == first.in_stock and ("out of stock" in reply) == (not first.in_stock)
        assert card_skus(chat, 1) == cards  # the same cards, so "the second one" means the same product

        reply = ask(chat, "what about the second one?", 2)
        assert chip_skus(chat, 2) == [second.sku], reply

        reply = ask(chat, "which is cheaper?", 3)
        cheap, dear = sorted((first, second), key=lambda x: x.price)
        assert chip_skus(chat, 3)[:2] == [cheap.sku, dear.sku], reply
        assert "cheaper than" in reply or "cost the same" in reply

        reply = ask(chat, "I'll take it", 4)
        assert chip_skus(chat, 4) == [cheap.sku] and card_skus(chat, 4) == [cheap.sku], reply
        chat.locator("li.cards").nth(4).locator("button").filter(has_text="Add to cart").wait_for()
        page.screenshot(path=str(ARTIFACTS / "widget-conversation.png"))


@pytest.mark.browser
@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_signed_in_shopper_complaining_about_a_late_order_gets_its_status_and_an_apology(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str, demo_store: DemoStore  # type: ignore[no-untyped-def]
) -> None:
    from playwright.sync_api import Route

    latest: dict[str, Any] = {}
    for order in sorted(demo_store.orders, key=lambda o: o.at):
        latest[order.shopper] = order
    shopper, order = next((s, o) for s, o in latest.items() if o.status in ("processing", "shipped"))
    with storefront(tmp_path, db_url, factory, saved_index, vllm_url) as (page, base):
        def signed_in(route: Route) -> None:  # the storefront knows its shopper
            html = route.fetch().text().replace('data-shopper-id=""', f'data-shopper-id="{shopper}"')
            route.fulfill(body=html, content_type="text/html")

        page.route(base + "/", signed_in)
        chat = open_widget(page, base, "ugh, my last order is late AGAIN. great, just great.")
        reply = completed(chat, 0)
        assert "I'm sorry about that." in reply and f"Your order {order.number} is {order.status}" in reply
        assert chat.locator("li.cards").count() == 0  # no product pitched at a complaint
        page.screenshot(path=str(ARTIFACTS / "widget-complaint.png"))
