"""Who is connected: sockets per IP, one generation per conversation, and each socket's bounded outbox."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from web.limits import TokenBucket


class SlowReader(Exception):
    """The client stopped reading: its outbox is full."""


class Outbox:
    """Frames waiting to go to one socket, written by :meth:`run` in order.

    A producer waits for room at most ``wait_s``: a client that has read
    nothing for that long while ``limit`` frames are queued is shed
    (:class:`SlowReader`) instead of holding its turn, and the model stream
    behind it, open. Other sockets never wait on it.
    """

    def __init__(self, send: Callable[[str], Awaitable[None]], limit: int, wait_s: float) -> None:
        self.send = send
        self.wait_s = wait_s
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=limit)

    async def put(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            try:  # asyncio.timeout, not wait_for, which can swallow a cancel on Python 3.11
                async with asyncio.timeout(self.wait_s):
                    await self.queue.put(text)
            except TimeoutError:
                raise SlowReader(f"{self.queue.maxsize} frames unread for {self.wait_s:g} s") from None

    async def run(self) -> None:
        while True:
            text = await self.queue.get()
            await self.send(text)


class Connections:
    """Process-wide registry of chat sockets.

    - ``open``/``close`` count sockets per client IP and refuse past ``per_ip``;
    - ``generation(conversation_id)`` serialises turns of one conversation across all its sockets;
    - ``session_allowed(ip)`` rate-limits new shopper sessions per IP.
    """

    def __init__(self, per_ip: int, sessions_per_min: float, session_burst: int, max_ips: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_ip = per_ip
        self.by_ip: Counter[str] = Counter()
        self.locks: dict[int, tuple[asyncio.Lock, int]] = {}
        self.session_rate, self.session_burst = sessions_per_min / 60.0, session_burst
        self.session_buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.max_ips = max_ips
        self.clock = clock

    @property
    def open_sockets(self) -> int:
        return sum(self.by_ip.values())

    def open(self, ip: str) -> bool:
        if self.by_ip[ip] >= self.per_ip:
            return False
        self.by_ip[ip] += 1
        return True

    def close(self, ip: str) -> None:
        self.by_ip[ip] -= 1
        if self.by_ip[ip] <= 0:
            del self.by_ip[ip]

    @asynccontextmanager
    async def generation(self, conversation_id: int) -> AsyncIterator[None]:
        lock, users = self.locks.get(conversation_id, (asyncio.Lock(), 0))
        self.locks[conversation_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self.locks[conversation_id]
            if users <= 1:
                del self.locks[conversation_id]
            else:
                self.locks[conversation_id] = (lock, users - 1)

    def session_allowed(self, ip: str) -> float | None:
        """None when ``ip`` may open a session now, else the seconds to wait."""
        bucket = self.session_buckets.pop(ip, None) or TokenBucket(self.session_rate, self.session_burst, self.clock)
        self.session_buckets[ip] = bucket  # most recent last; the oldest are forgotten past max_ips
        while len(self.session_buckets) > self.max_ips:
            self.session_buckets.popitem(last=False)
        return bucket.take()
