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
        calm_chat = open_widget(store, base, "do you have wool socks?")
        calm_chat.locator(".msg.assistant .rate").first.wait_for(timeout=120_000)

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
        calm = console.locator("#queue li").first  # the one conversation, pushed: the console never polls
        assert calm.locator(".shopper").inner_text().startswith("guest ")  # a handle, not the session token
        assert "wool socks" in calm.locator(".last").inner_text() and calm.locator(".reason").inner_text()
        assert calm.locator(".owner").inner_text() == "assistant"

        # 1. a second shopper complains twice: their conversation rises to the top with its reason, no reload
        upset = browser.new_context().new_page()  # a session of their own
        upset.on("pageerror", lambda e: errors.append(str(e)))
        chat = open_widget(upset, base, "this is the third time my package is late, I'm really angry")
        chat.locator(".msg.assistant .rate").first.wait_for(timeout=120_000)
        chat.locator("#input").fill("you guys are useless, nobody answers my emails")
        chat.locator("#send").click()
        top = console.locator("#queue li").first
        top.locator(".last").filter(has_text="nobody answers my emails").wait_for(timeout=60_000)
        top.locator(".reason").filter(has_text=re.compile("angry|unhappy|upset")).wait_for(timeout=60_000)  # scored
        assert "nobody answers my emails" in top.locator(".last").inner_text()  # still on top once scored
        assert console.locator("#queue li").count() == 2
        chat.locator(".msg.assistant .rate").nth(1).wait_for(timeout=120_000)  # the second reply is in
        console.screenshot(path=str(ARTIFACTS / "console-queue.png"))

        # 2. the agent opens it, takes it over and sees the panel
        row = console.locator("#queue li").filter(has_text="nobody answers my emails")
        row.click()
        console.locator("#transcript .msg.assistant").nth(1).wait_for()
        console.click("#takeover")
        console.locator("#state").filter(has_text="you have it").wait_for()
        chat.locator("#status").filter(has_text="with ana").wait_for(timeout=10_000)
        chat.locator(".msg.note").filter(has_text="ana joined the chat").wait_for()
        assert "mood" in console.locator("#signals").inner_text()  # the shopper panel
        assert "new shopper" in console.locator("#profile").inner_text()  # a widget visitor has no history
        assert console.locator("#orders").inner_text() == "No orders"
        assert console.locator("#mood circle").count() == 2  # two shopper messages so far
        assert console.locator("#shown li").count() > 0  # the cards the assistant showed, with why
        console.screenshot(path=str(ARTIFACTS / "console-takeover.png"))

        # 3. a draft streams in from the real model; the agent edits it and sends it
        console.click("#draft")
        console.locator("#reply.drafted").wait_for(timeout=120_000)
        drafted = console.input_value("#text")
        assert drafted.strip() and console.locator("#draft-products li").count() > 0
        console.screenshot(path=str(ARTIFACTS / "console-draft.png"))
        sent = "I'm Ana, sorry about the delays. I've chased the courier and will email you the tracking today."
        console.fill("#text", sent)
        console.click("#send")
        chat.locator(".msg.agent").filter(has_text="chased the courier").wait_for(timeout=10_000)

        # 4. the shopper writes again: the agent sees it live, and no model reply comes
        chat.locator("#input").fill("ok, thanks Ana")
        chat.locator("#send").click()
        console.locator("#transcript .msg.shopper").filter(has_text="ok, thanks Ana").wait_for(timeout=10_000)
        live = console.locator("#queue li").filter(has_text="ok, thanks Ana")  # the row follows, live
        live.wait_for(timeout=10_000)
        assert live.locator(".owner").inner_text() == "yours"
        upset.wait_for_timeout(1000)
        assert chat.locator(".typing").count() == 0  # a human answers: no assistant is "typing"
        assert chat.locator(".msg.assistant").count() == 2
        upset.screenshot(path=str(ARTIFACTS / "widget-with-agent.png"))

        # 5. the agent releases, and the assistant answers the next message
        console.click("#release")
        chat.locator(".msg.note").filter(has_text="ana left the chat").wait_for(timeout=10_000)
        chat.locator("#status").filter(has_text="online").wait_for()
        chat.locator("#input").fill("do you have wool socks?")
        chat.locator("#send").click()
        chat.locator(".msg.assistant .rate").nth(2).wait_for(timeout=120_000)
        browser.close()
    assert errors == []
    with factory() as session:  # 6. the draft and the text sent are stored together
        draft = session.scalars(select(Draft)).one()
        assert (draft.suggested_text, draft.sent_text) == (drafted, sent)
        assert draft.edit_distance and draft.edit_distance > 0
        stored = session.scalars(select(Message).where(Message.conversation_id == draft.conversation_id)
                                 .order_by(Message.seq)).all()
    joined = next(m.seq for m in stored if m.text.startswith("ana joined"))
    left = next(m.seq for m in stored if m.text.startswith("ana left"))
    assert [m.role for m in stored if joined < m.seq < left] == [Role.AGENT, Role.SHOPPER]  # no model reply
    assert [m.role for m in stored if m.seq > left][-2:] == [Role.SHOPPER, Role.ASSISTANT]  # the bot is back
