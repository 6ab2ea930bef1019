"""The live queue: every change to a conversation is pushed to the open consoles, with no polling.

Changes arrive in bursts (a message, its scores, the reply, a takeover). :meth:`QueueFeed.changed`
only marks the queue dirty; one task rebuilds it at most every ``interval_s`` and sends each console
the rows it may see, ranked by :func:`bot.agent_queue.queue`. With replicas, the same task tells the
others (a ``queue`` notice on the bus) and they rebuild their consoles' queues from the database.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from bot import agent_queue
from bot.agent_queue import QueueEntry
from web.bus import Bus
from web.protocol import QueueSnapshot

log = logging.getLogger("aisle.queue")


class Console(Protocol):
    agent_id: int
    role: str

    async def send(self, frame: QueueSnapshot) -> None: ...


class QueueFeed:
    def __init__(self, factory: sessionmaker[Session], *, churn_high: float, bus: Bus | None = None,
                 interval_s: float = 0.2) -> None:
        self.factory = factory
        self.churn_high = churn_high
        self.bus = bus or Bus()
        self.interval_s = interval_s
        self.consoles: set[Console] = set()
        self._dirty = asyncio.Event()
        self._tell_others = False
        self._task: asyncio.Task[None] | None = None
        self.bus.on("queue", self._changed_elsewhere)

    def entries(self) -> list[QueueEntry]:
        with self.factory() as session:
            return agent_queue.queue(session, churn_high=self.churn_high)

    @staticmethod
    def snapshot(entries: list[QueueEntry], console: Console) -> QueueSnapshot:
        return QueueSnapshot(conversations=[e.as_dict() for e in entries
                                            if agent_queue.visible(e, agent_id=console.agent_id, role=console.role)])

    async def attend(self, console: Console) -> None:
        """Add a console and send it the queue as it stands."""
        self.consoles.add(console)
        await console.send(self.snapshot(await asyncio.to_thread(self.entries), console))

    def leave(self, console: Console) -> None:
        self.consoles.discard(console)

    def changed(self) -> None:
        """Something in the queue changed here: every replica's consoles get the new queue shortly."""
        self._tell_others = self.bus.shared
        self._mark()

    async def _changed_elsewhere(self, _body: dict[str, object]) -> None:
        self._mark()

    def _mark(self) -> None:
        if not self.consoles and not self._tell_others:
            return
        self._dirty.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._push(), name="queue-feed")

    async def _push(self) -> None:
        while self._dirty.is_set():
            self._dirty.clear()
            if self._tell_others:
                self._tell_others = False
                try:
                    await self.bus.send("queue", {})
                except Exception:  # the other replicas' consoles catch up on their next change
                    log.exception("the other replicas were not told of a queue change")
            if self.consoles:
                await self._send_all()
            await asyncio.sleep(self.interval_s)

    async def _send_all(self) -> None:
        try:
            entries = await asyncio.to_thread(self.entries)
        except Exception:  # the database hiccuped: the next change pushes again
            log.exception("the queue could not be read")
            return
        consoles = list(self.consoles)
        results = await asyncio.gather(*(c.send(self.snapshot(entries, c)) for c in consoles),
                                       return_exceptions=True)
        for result in results:  # a slow or closed console is shed by its own socket loop
            if isinstance(result, Exception):
                log.info("a console missed a queue update: %r", result)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

