"""Fan-out inside one app process: a conversation's shopper sockets and the agents watching it.

Past one replica this becomes PostgreSQL LISTEN/NOTIFY (see ARCHITECTURE.md); the
interface stays: ``publish`` for the agents, ``interrupt``/``deliver`` for the shoppers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from pydantic import BaseModel

log = logging.getLogger("aisle.hub")
T = TypeVar("T")


class ShopperSocket(Protocol):
    async def interrupt(self, then: BaseModel | None) -> None:
        """Stop the running turn (its vLLM request is aborted), send what the client missed, then ``then``."""

    async def send(self, frame: BaseModel) -> None: ...


class AgentSocket(Protocol):
    async def relay(self, conversation_id: int, frame: BaseModel) -> None: ...


class Hub:
    def __init__(self) -> None:
        self.shoppers: defaultdict[int, set[ShopperSocket]] = defaultdict(set)
        self.watchers: defaultdict[int, set[AgentSocket]] = defaultdict(set)

    def join(self, conversation_id: int, socket: ShopperSocket) -> None:
        self.shoppers[conversation_id].add(socket)

    def leave(self, conversation_id: int, socket: ShopperSocket) -> None:
        self._discard(self.shoppers, conversation_id, socket)

    def watch(self, conversation_id: int, agent: AgentSocket) -> None:
        self.watchers[conversation_id].add(agent)

    def unwatch(self, conversation_id: int, agent: AgentSocket) -> None:
        self._discard(self.watchers, conversation_id, agent)

    def unwatch_all(self, agent: AgentSocket) -> None:
        for conversation_id in [c for c, agents in self.watchers.items() if agent in agents]:
            self.unwatch(conversation_id, agent)

    async def publish(self, conversation_id: int, frame: BaseModel) -> None:
        """A stored message of the conversation, for the agents watching it."""
        if agents := self.watchers.get(conversation_id):  # usually none: nothing to schedule
            await self._each(agents, lambda a: a.relay(conversation_id, frame))

    async def deliver(self, conversation_id: int, frame: BaseModel) -> None:
        """A frame for every shopper socket of the conversation."""
        await self._each(self.shoppers.get(conversation_id, ()), lambda s: s.send(frame))

    async def interrupt(self, conversation_id: int, then: BaseModel | None = None) -> None:
        """Stop the conversation's generation on every shopper socket, resync them, then send ``then``."""
        await self._each(self.shoppers.get(conversation_id, ()), lambda s: s.interrupt(then))

    @staticmethod
    async def _each(targets: Iterable[T], call: Callable[[T], Awaitable[None]]) -> None:
        results = await asyncio.gather(*(call(t) for t in list(targets)), return_exceptions=True)
        for result in results:  # one slow or closed socket never stops the others; its own loop sheds it
            if isinstance(result, Exception):
                log.info("a socket missed a fan-out frame: %r", result)

    @staticmethod
    def _discard(table: dict[int, set[T]], conversation_id: int, item: T) -> None:
        members = table.get(conversation_id)
        if members is not None:
            members.discard(item)
            if not members:
                del table[conversation_id]
