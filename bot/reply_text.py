"""The model's text on its way to the reader: checked by the output guard, then its product references
rendered by the catalog. Replies and agents' drafts both stream through it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.guard import StreamGuard
from bot.mentions import MentionRenderer


@dataclass
class ReplyText:
    guard: StreamGuard
    renderer: MentionRenderer

    def feed(self, delta: str) -> str:
        """Take a delta from the model; return the text that can be shown now."""
        return self.renderer.feed(self.guard.feed(delta))

    def opening(self, text: str) -> str:
        """The server's own words before the model's: not guarded (the server wrote them from the facts),
        their product references rendered and recorded like the model's."""
        return self.renderer.feed(text) + self.renderer.finish()

    def finish(self) -> str:
        """The rest, once the model has stopped."""
        return self.renderer.feed(self.guard.finish()) + self.renderer.finish()

    @property
    def cut_whole(self) -> bool:
        return self.guard.cut_whole

    @property
    def corrections(self) -> list[dict[str, str]]:
        return self.guard.corrections

    @property
    def mentions(self) -> list[dict[str, Any]]:
        return self.renderer.mentions
