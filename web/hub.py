"""Fan-out: a conversation's shopper sockets and the agents watching it, in this process and, through
the :mod:`web.bus`, in the other replicas.

``publish`` is for the agents, ``interrupt``/``deliver`` for the shoppers. Each applies here at once,
then goes to the other replicas as a notice; a frame too big for a notice (a reply with its whole
record) travels as its message id, and the receiving replica reads it back (``reload``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from web.bus import Bus, NoticeTooLarge

log = logging.getLogger("aisle.hub")
T = TypeVar("T")


class ShopperSocket(Protocol):
    async def interrupt(self, then: BaseModel | None) -> None:
        """Stop the running turn (its vLLM request is aborted), send what the client missed, then ``then``."""

    async def send(self, frame: BaseModel) -> None: ...


class AgentSocket(Protocol):
    async def relay(self, conversation_id: int, frame: BaseModel) -> None: ...


class Relayed(BaseModel):
    """A frame as another replica sent it."""

    model_config = ConfigDict(extra="allow")


Reload = Callable[[int], Awaitable[BaseModel | None]]


class Hub:
    def __init__(self, bus: Bus | None = None, reload: Reload | None = None) -> None:
        self.shoppers: defaultdict[int, set[ShopperSocket]] = defaultdict(set)
        self.watchers: defaultdict[int, set[AgentSocket]] = defaultdict(set)
        self.bus = bus or Bus()
        self.reload = reload  # the agents' frame of a stored message, by id, when it is too big for a notice
        for kind, apply in (("publish", self._publish), ("deliver", self._deliver), ("interrupt", self._interrupt)):
            self.bus.on(kind, self._from_bus(apply))

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
        """A stored message of the conversation (or its state), for the agents watching it."""
        await self._publish(conversation_id, frame)
        await self._share("publish", conversation_id, frame)

    async def deliver(self, conversation_id: int, frame: BaseModel) -> None:
        """A frame for every shopper socket of the conversation."""
        await self._deliver(conversation_id, frame)
        await self._share("deliver", conversation_id, frame)

    async def interrupt(self, conversation_id: int, then: BaseModel | None = None) -> None:
        """Stop the conversation's generation on every shopper socket, resync them, then send ``then``."""
        await self._interrupt(conversation_id, then)
        await self._share("interrupt", conversation_id, then)

    async def _publish(self, conversation_id: int, frame: BaseModel | None) -> None:
        if frame is not None and (agents := self.watchers.get(conversation_id)):  # usually none
            await self._each(agents, lambda a: a.relay(conversation_id, frame))

    async def _deliver(self, conversation_id: int, frame: BaseModel | None) -> None:
        if frame is not None:
            await self._each(self.shoppers.get(conversation_id, ()), lambda s: s.send(frame))

    async def _interrupt(self, conversation_id: int, then: BaseModel | None) -> None:
        await self._each(self.shoppers.get(conversation_id, ()), lambda s: s.interrupt(then))

    async def _share(self, kind: str, conversation_id: int, frame: BaseModel | None) -> None:
        if not self.bus.shared:
            return
        body: dict[str, Any] = {"conversation_id": conversation_id,
                                "frame": frame.model_dump(mode="json") if frame is not None else None}
        try:
            try:
                await self.bus.send(kind, body)
            except NoticeTooLarge:
                if kind != "publish" or (message_id := getattr(frame, "id", None)) is None:
                    raise  # only the agents' copy of a stored message is reloaded (with its whole record)
                await self.bus.send(kind, {"conversation_id": conversation_id, "message_id": message_id})
        except Exception:  # this replica's sockets have it already; the others catch up on resume
            log.exception("a %s for conversation %s did not reach the other replicas", kind, conversation_id)

    def _from_bus(self, apply: Callable[[int, BaseModel | None], Awaitable[None]]
                  ) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def handle(body: dict[str, Any]) -> None:
            frame: BaseModel | None = None
            if body.get("frame") is not None:
                frame = Relayed.model_validate(body["frame"])
            elif body.get("message_id") is not None and self.reload is not None:
                frame = await self.reload(body["message_id"])
            await apply(body["conversation_id"], frame)
        return handle

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
