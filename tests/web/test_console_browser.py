"""The agent console and the widget in headless Chromium, against the real app and the real model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.agents import add_agent
from bot.models import Draft, Message, Role
from tests.conftest import make_settings, serve
from tests.web.test_widget_browser import ARGS, ARTIFACTS, CHROMIUM, open_widget
from web.app import create_app


@pytest.mark.browser
@pytest.mark.vllm
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_agent_takes_over_from_the_console_and_the_shopper_sees_it(
    tmp_path: Path, db_url: str, factory, saved_index: Path, vllm_url: str  # type: ignore[no-untyped-def]
) -> None:
    from playwright.sync_api import sync_playwright

    with factory() as session, session.begin():
        add_agent(session, name="ana", password="ana-pass")
    settings = make_settings(tmp_path, db_url, saved_index, vllm_url=vllm_url, max_tokens=32)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(create_app(settings)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        errors: list[str] = []
        store = browser.new_page()
        store.on("pageerror", lambda e: errors.append(str(e)))
        chat = open_widget(store, base, "do you have wool socks?")
        chat.locator(".msg.assistant .rate").first.wait_for(timeout=120_000)

        console = browser.new_page(viewport={"width": 1280, "height": 800})
        console.on("pageerror", lambda e: errors.append(str(e)))
        console.goto(base + "/console")
        console.fill("#name", "ana")
        console.fill("#password", "wrong")
        console.click("#login button")
        console.locator("#login-error").filter(has_text="Wrong name or password").wait_for()
        console.fill("#password", "ana-pass")
        console.click("#login button")
        console.locator("#login").wait_for(state="hidden")  # once in, the form is gone and the desk shows
        assert console.locator("#desk").is_visible()
        row = console.locator("#queue li").first  # the one conversation, pushed: the console never polls
        assert row.locator(".shopper").inner_text().startswith("guest ")  # a handle, not the session token
        assert "wool socks" in row.locator(".last").inner_text() and row.locator(".reason").inner_text()
        assert row.locator(".owner").inner_text() == "assistant"

        upset = browser.new_context().new_page()  # a second shopper, with a session of their own
        upset.on("pageerror", lambda e: errors.append(str(e)))
        other = open_widget(upset, base, "this is the third time my package is late, I'm really angry")
        other.locator(".msg.assistant .rate").first.wait_for(timeout=120_000)
        other.locator("#input").fill("you guys are useless, nobody answers my emails")
        other.locator("#send").click()
        top = console.locator("#queue li").first  # they complained twice: their row rises, pushed, no reload
        top.locator(".last").filter(has_text="nobody answers my emails").wait_for(timeout=60_000)
        top.locator(".reason").filter(has_text=re.compile("angry|unhappy|upset")).wait_for(timeout=60_000)  # scored
        assert "nobody answers my emails" in top.locator(".last").inner_text()  # still on top once scored
        assert console.locator("#queue li").count() == 2
        console.screenshot(path=str(ARTIFACTS / "console-queue.png"))

        row = console.locator("#queue li").filter(has_text="wool socks")
        row.click()
        console.locator("#transcript .msg.assistant").first.wait_for()
        console.click("#takeover")
        console.locator("#state").filter(has_text="you have it").wait_for()
        chat.locator("#status").filter(has_text="with ana").wait_for(timeout=10_000)
        chat.locator(".msg.note").filter(has_text="ana joined the chat").wait_for()
        assert "mood" in console.locator("#signals").inner_text()  # the shopper panel
        assert "new shopper" in console.locator("#profile").inner_text()  # a widget visitor has no history
        assert console.locator("#orders").inner_text() == "No orders"
        assert console.locator("#mood circle").count() == 1  # one shopper message so far
        assert console.locator("#shown li").count() > 0  # the cards the assistant showed, with why

        console.click("#draft")  # the real model drafts; the agent edits it before it is sent
        console.locator("#reply.drafted").wait_for(timeout=120_000)
        drafted = console.input_value("#text")
        assert drafted.strip() and console.locator("#draft-products li").count() > 0
        console.screenshot(path=str(ARTIFACTS / "console-draft.png"))
        console.fill("#text", "Hi, I'm Ana. We have merino socks in three sizes.")
        console.click("#send")
        chat.locator(".msg.agent").filter(has_text="merino socks").wait_for(timeout=10_000)
        chat.locator("#input").fill("great, thanks!")
        chat.locator("#send").click()
        console.locator("#transcript .msg.shopper").filter(has_text="great, thanks!").wait_for(timeout=10_000)
        live = console.locator("#queue li").filter(has_text="great, thanks!")  # the row follows, live
        live.wait_for(timeout=10_000)
        assert live.locator(".owner").inner_text() == "yours"
        store.wait_for_timeout(1000)
        assert chat.locator(".typing").count() == 0  # a human answers: no assistant is "typing"
        assert chat.locator(".msg.assistant").count() == 1
        console.screenshot(path=str(ARTIFACTS / "console-takeover.png"))
        store.screenshot(path=str(ARTIFACTS / "widget-with-agent.png"))

        console.click("#release")
        chat.locator(".msg.note").filter(has_text="ana left the chat").wait_for(timeout=10_000)
        chat.locator("#status").filter(has_text="online").wait_for()
        browser.close()
    assert errors == []
    with factory() as session:
        draft = session.scalars(select(Draft)).one()
        assert (draft.suggested_text, draft.sent_text) == (drafted, "Hi, I'm Ana. We have merino socks in three sizes.")
        assert draft.edit_distance and draft.edit_distance > 0
        stored = session.scalars(select(Message).where(Message.conversation_id == draft.conversation_id)
                                 .order_by(Message.seq)).all()
    owned = [m.role for m in stored if m.seq > next(m.seq for m in stored if m.text.startswith("ana joined"))]
    owned = owned[:owned.index(Role.SYSTEM)]  # until ana left
    assert owned == [Role.AGENT, Role.SHOPPER]  # no model reply was made while ana had it
