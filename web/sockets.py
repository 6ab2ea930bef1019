"""What both WebSockets share: admission, the bounded outbox, parsing with error frames, the receive loop
and how a socket closes. :class:`web.chat.ChatConnection` and :class:`web.agent.AgentConnection` extend
:class:`FrameSocket` with what their frames do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from starlette.websockets import WebSocketState

from bot.errors import RequestError
from web.auth import TokenError
from web.connections import Outbox, SlowReader
from web.limits import origin_allowed
from web.protocol import ErrorFrame, Inbound
from web.state import AppState

log = logging.getLogger("aisle.sockets")
NORMAL, POLICY_VIOLATION, MESSAGE_TOO_BIG, INTERNAL_ERROR, TRY_AGAIN_LATER = 1000, 1008, 1009, 1011, 1013
C = TypeVar("C")
R = TypeVar("R")


async def admit(ws: WebSocket, origins: list[str], verify: Callable[[str | None], C]) -> C | None:
    """Check the upgrade's Origin and token, then accept; None (the socket refused, 403) when either fails."""
    if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), origins):
        await ws.close(code=POLICY_VIOLATION, reason="origin not allowed")
        return None
    try:
        claims = verify(ws.query_params.get("token"))
    except TokenError as exc:
        await ws.close(code=POLICY_VIOLATION, reason=str(exc))
        return None
    await ws.accept()
    return claims


async def close_quietly(ws: WebSocket, code: int, reason: str) -> None:
    # the peer may be gone or not reading; the transport is torn down with the handler either way
    with contextlib.suppress(TimeoutError, RuntimeError, OSError):
        await asyncio.wait_for(ws.close(code=code, reason=reason), 5)


class FrameSocket:
    """One accepted socket: frames in (parsed by :attr:`inbound`), frames out (through a bounded outbox).

    Subclasses implement :meth:`dispatch`, and may override :meth:`opened` (first frames), :meth:`closed`
    (leave shared registries) and :meth:`companions` (tasks whose end ends the socket).

    - A frame that cannot be parsed, or whose request fails with a :class:`RequestError`, gets an
      ``error`` frame; the socket stays open.
    - A binary frame gets ``bad_frame``; a frame over ``max_frame_bytes`` closes the socket (1009).
    - A client that stops reading is shed (1013) once its outbox has been full for ``outbox_wait_s``.
    """

    inbound: Inbound
    label = "socket"

    def __init__(self, ws: WebSocket, state: AppState) -> None:
        self.ws = ws
        self.state = state
        self.outbox = Outbox(ws.send_text, state.settings.outbox_frames, state.settings.outbox_wait_s)
        self.background: set[asyncio.Task[Any]] = set()  # cancelled with the socket

    async def send(self, frame: BaseModel) -> None:
        """Queue a frame; raises :class:`SlowReader` when the client has stopped reading."""
        await self.outbox.put(frame.model_dump_json())

    async def error(self, code: str, message: str) -> None:
        await self.send(ErrorFrame(code=code, message=message))

    async def in_db(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """``fn(session, *args, **kwargs)`` in one transaction, off the event loop."""
        def run() -> R:
            with self.state.factory() as session, session.begin():
                return fn(session, *args, **kwargs)
        return await asyncio.to_thread(run)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` beside the receive loop; a :class:`RequestError` it raises becomes an error frame."""
        async def guarded() -> None:
            try:
                await work
            except RequestError as exc:
                await self.error(exc.code, str(exc))
        task = asyncio.create_task(guarded(), name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def handle(self, raw: str) -> None:
        try:
            await self.dispatch(self.inbound.parse(raw))
        except RequestError as exc:
            await self.error(exc.code, str(exc))

    async def dispatch(self, frame: BaseModel) -> None:
        raise NotImplementedError

    async def opened(self) -> None:
        """The first frames, sent before any client frame is read."""

    def closed(self) -> None:
        """The socket is closing: leave whatever was joined."""

    def companions(self) -> list[asyncio.Task[Any]]:
        """Tasks started with the socket whose end (or crash) ends it."""
        return []

    async def serve(self) -> None:
        """Run the socket until the client leaves, it is shed, or something it depends on ends."""
        vital = [asyncio.create_task(self.outbox.run(), name=f"{self.label}-outbox"), *self.companions()]
        code, reason = NORMAL, ""
        try:
            await self.opened()
            while True:
                receive = asyncio.ensure_future(self.ws.receive())
                done, _ = await asyncio.wait({receive, *vital}, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    if (crash := next(iter(done & set(vital))).exception()) is not None:
                        raise crash
                    return
                message = receive.result()
                if message["type"] == "websocket.disconnect":
                    return
                raw = message.get("text")
                if raw is None:
                    await self.error("bad_frame", "Binary frames are not supported; send JSON text.")
                    continue
                if len(raw.encode()) > self.state.settings.max_frame_bytes:
                    code, reason = MESSAGE_TOO_BIG, f"frame over {self.state.settings.max_frame_bytes} bytes"
                    return
                await self.handle(raw)
        except SlowReader as exc:
            log.warning("shedding a slow reader (%s): %s", self.label, exc)
            code, reason = TRY_AGAIN_LATER, "client too slow; reconnect and resume"
        except (WebSocketDisconnect, OSError):
            return
        except Exception:
            log.exception("%s failed", self.label)
            code = INTERNAL_ERROR
        finally:
            self.closed()
            tasks = [*vital, *self.background]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.ws.client_state == WebSocketState.CONNECTED:
                await close_quietly(self.ws, code, reason)

