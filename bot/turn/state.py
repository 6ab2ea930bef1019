"""A conversation's state, derived from its stored messages: the products shown, the ones in focus, the need.

Nothing here is kept in memory between turns: every turn reads the state from the replies' records
(``meta.retrieved_skus``, ``meta.mentions``, ``meta.focus``, ``meta.filters``), so it is the same after a
reload, a resume or on another replica, for replies and agents' drafts alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.models import Message, Role
from bot.turn_events import ReplyMeta
from retrieval.catalog import ProductDoc

FOCUS_DEPTH = 2
"""Products kept in focus: "which is cheaper?" compares the last two talked about."""


@dataclass(frozen=True)
class DialogueState:
    shown: list[str] = field(default_factory=list)
    """SKUs of the latest product list the shopper saw, in card order ("the second one" is ``shown[1]``)."""
    focus: list[str] = field(default_factory=list)
    """SKUs talked about lately, the latest first ("it" is ``focus[0]``)."""
    need: str | None = None
    """The shopper's words that asked for the shown list ("waterproof hiking boots under $120")."""
    constraint: str = ""
    """That search's limits, in words ("under $120, in stock")."""
    language: str | None = None
    """The language the shopper wrote in last (a short "ok" keeps it)."""

    def describe(self, lookup: Callable[[str], ProductDoc | None]) -> str:
        """The state in words, for the agent console: "talking about: X; wants: Y"."""
        parts = []
        titles = [p.title for p in map(lookup, self.focus) if p is not None]
        if titles:
            parts.append(f"talking about: {', '.join(titles)}")
        if self.need:
            parts.append(f"wants: {self.need}" + (f" ({self.constraint})" if self.constraint else ""))
        return "; ".join(parts)

    def as_meta(self) -> dict[str, object]:
        return {"shown": self.shown, "focus": self.focus, "need": self.need, "constraint": self.constraint,
                "language": self.language}


def dialogue_state(history: Sequence[Message]) -> DialogueState:
    """The state after ``history`` (a conversation's messages, oldest first)."""
    by_id = {m.id: m for m in history}
    replies = [(m, r) for m in history if m.role in (Role.ASSISTANT, Role.AGENT)
               if (r := ReplyMeta.stored(m.meta)) is not None]
    language = next((r.language for _, r in reversed(replies) if r.language), None)
    listing = next(((m, r) for m, r in reversed(replies) if r.retrieved_skus), None)
    if listing is None:
        return DialogueState(language=language)
    shown = list(listing[1].retrieved_skus)
    focus: list[str] = []
    for _, r in reversed(replies):
        if r is not listing[1] and r.retrieved_skus != shown:
            break  # an earlier list: what it talked about is not on the cards now
        for sku in r.focus or [x["sku"] for x in r.mentions[:1]]:
            if sku in shown and sku not in focus:
                focus.append(sku)
        if len(focus) >= FOCUS_DEPTH:
            break
    # the need is the search that made this list: the earliest reply in a row that kept these cards
    origin = listing[1]
    for _, r in reversed(replies):
        if r.retrieved_skus == shown:
            origin = r
        elif r.retrieved_skus:
            break
    asked = by_id.get(origin.reply_to)
    need = origin.need or (asked.text if asked is not None and asked.role == Role.SHOPPER else None)
    return DialogueState(shown=shown, focus=focus[:FOCUS_DEPTH], need=need, constraint=origin.filters,
                         language=language)
