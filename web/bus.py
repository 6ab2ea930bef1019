"""Fan-out between app replicas: what one process must tell the others (a message for the agents
watching a conversation, a takeover that must stop a reply another process is generating, a queue
change).

:class:`Bus` is one process: nothing crosses, the SQLite default. :class:`PostgresBus` carries the
same notices over PostgreSQL LISTEN/NOTIFY, so two or more app processes on one database act as one.
A notice is JSON under PostgreSQL's 8,000-byte payload limit; the sender leaves bigger things in
the database and sends their id. Each process ignores its own notices.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("aisle.bus")
Handler = Callable[[dict[str, Any]], Awaitable[None]]
MAX_NOTICE_BYTES = 7900
"""PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more."""


class NoticeTooLarge(ValueError):
    pass


class Bus:
    """Notices between replicas; this base class is a single process, where there is no one to tell."""

    def __init__(self) -> None:
        self.origin = uuid.uuid4().hex[:12]
        self.handlers: dict[str, Handler] = {}

    def on(self, kind: str, handler: Handler) -> None:
        """Call ``handler(body)`` for every ``kind`` notice another replica sends."""
        self.handlers[kind] = handler

    @property
    def shared(self) -> bool:
        """Whether other replicas may be listening."""
        return False

    def encode(self, kind: str, body: dict[str, Any]) -> str:
        raw = json.dumps({"origin": self.origin, "kind": kind, "body": body}, separators=(",", ":"))
        if len(raw.encode()) >= MAX_NOTICE_BYTES:
            raise NoticeTooLarge(f"a {kind} notice of {len(raw.encode())} bytes")
        return raw

    async def send(self, kind: str, body: dict[str, Any]) -> None:
        self.encode(kind, body)  # the same limit everywhere: a notice that fits here fits on PostgreSQL

    async def receive(self, raw: str) -> None:
        """Apply another replica's notice (one's own are skipped)."""
        try:
            notice = json.loads(raw)
            if notice["origin"] == self.origin:
                return
            handler = self.handlers.get(notice["kind"])
        except (ValueError, KeyError, TypeError):
            log.warning("an unreadable notice on the bus: %.200s", raw)
            return
        if handler is None:
            return
        try:
            await handler(notice["body"])
        except Exception:  # one bad notice never stops the listener
            log.exception("the %s notice from replica %s failed", notice["kind"], notice["origin"])

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class PostgresBus(Bus):
    CHANNEL = "aisle_fanout"

    def __init__(self, dsn: str, *, reconnect_s: float = 1.0) -> None:
        super().__init__()
        self.dsn = dsn
        self.reconnect_s = reconnect_s
        self._sender: Any = None
        self._send_lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    @property
    def shared(self) -> bool:
        return True

    async def _connect(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="bus-listen")
        await asyncio.wait_for(self.listening.wait(), 30)

    async def _listen(self) -> None:
        """LISTEN on its own connection (psycopg's notifies() holds it); reconnect if it drops."""
        import psycopg

        while True:
            try:
                conn = await self._connect()
                async with conn:
                    await conn.execute(f"LISTEN {self.CHANNEL}")
                    self.listening.set()
                    async for notice in conn.notifies():
                        await self.receive(notice.payload)
            except (psycopg.OperationalError, OSError) as exc:
                self.listening.clear()
                log.warning("the bus lost PostgreSQL (%s); listening again in %.0f s", exc, self.reconnect_s)
                await asyncio.sleep(self.reconnect_s)

    async def send(self, kind: str, body: dict[str, Any]) -> None:
        await self.notify(self.encode(kind, body))

    async def notify(self, payload: str) -> None:
        """Put ``payload`` on the channel as it is, on the sending connection (reconnecting once)."""
        import psycopg

        async with self._send_lock:
            for attempt in (1, 2):  # one reconnect: a server restart drops idle connections
                try:
                    if self._sender is None or self._sender.closed:
                        self._sender = await self._connect()
                    await self._sender.execute("SELECT pg_notify(%s, %s)", (self.CHANNEL, payload))
                    return
                except (psycopg.OperationalError, OSError):
                    self._sender = None
                    if attempt == 2:
                        raise

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._sender is not None:
            await self._sender.close()


def bus_for(database_url: str, fanout: str) -> Bus:
    """``auto``: LISTEN/NOTIFY on PostgreSQL, one process on SQLite."""
    if fanout == "local" or (fanout == "auto" and not database_url.startswith("postgresql")):
        return Bus()
    if not database_url.startswith("postgresql"):
        raise ValueError("AISLE_FANOUT=postgres needs a PostgreSQL AISLE_DATABASE_URL")
    from sqlalchemy.engine import make_url

    return PostgresBus(make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False))
