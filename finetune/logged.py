"""Reading a logged turn back as serving saw it: its prompt record, the history before it, scrubbed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bot.models import Message, Role
from bot.prompts import PromptRecord, Turn

Clean = Callable[[str | None], str | None]


def served_history(messages: list[Message], before_seq: int, turns: int) -> list[Turn]:
    """The earlier messages as serving put them in the prompt (the last ``turns`` rows, then filtered)."""
    rows = [m for m in messages if m.seq < before_seq][-turns:] if turns else []
    return [Turn("user" if m.role == Role.SHOPPER else "assistant", m.text)
            for m in rows if m.text and m.role != Role.SYSTEM]


def scrubbed_prompt(record: PromptRecord, history: list[Turn], question: str, clean: Clean
                    ) -> tuple[PromptRecord, list[dict[str, str]]]:
    """The record with its personal fields scrubbed, and the chat messages built from it as serving builds them."""
    record = dataclasses.replace(record, profile=clean(record.profile), facts=clean(record.facts),
                                 opening=clean(record.opening) or "")
    turns = [Turn(t.role, clean(t.text) or "") for t in history]
    return record, record.messages(history=turns, text=clean(question) or "")
