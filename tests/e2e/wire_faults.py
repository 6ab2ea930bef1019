"""A TCP proxy on 127.0.0.1 in front of a real server, which fails the way a dying server does.

The app connects to the proxy's port as it would to vLLM's. On command the proxy:
- ``hang()``: accepts connections and holds every byte, answering nothing (a server stopped with
  SIGSTOP: the kernel still accepts into the listen backlog);
- ``resume()``: lets the held bytes flow again (SIGCONT);
- ``kill()``: resets every open connection and stops listening, so new connections are refused
  (SIGKILL: the kernel resets the server's sockets and nothing listens on the port);
- ``restore()``: listens again on the same port (the server is back).

Seen from the app, each is the same on the wire as the fault it stands for, while the vLLM behind
stays up and shared: a test of faults no longer costs a server start of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading

from bot.llm.managed import free_port


class WireFaults:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> WireFaults:
        self._thread.start()
        self._call(self._setup())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _setup(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        self._writers.add(client_w)
        try:
            await self._flowing.wait()  # a hung server accepts, then says nothing
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            self._reset(client_w)
            return
        self._writers.add(up_w)
        await asyncio.gather(self._pipe(client_r, up_w), self._pipe(up_r, client_w), return_exceptions=True)
        for w in (client_w, up_w):
            self._writers.discard(w)
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        while data := await reader.read(65536):
            await self._flowing.wait()
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    def _reset(self, writer: asyncio.StreamWriter) -> None:
        """Close with an RST, as the kernel does for a killed process's sockets."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _shutdown(self) -> None:
        await self._kill()

    async def _kill(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            self._reset(w)
        self._writers.clear()

    def hang(self) -> None:
        assert self._flowing is not None
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def resume(self) -> None:
        assert self._flowing is not None
        self._loop.call_soon_threadsafe(self._flowing.set)

    def kill(self) -> None:
        self._call(self._kill())
        self.resume()  # connections to the dead port are refused, not held

    def restore(self) -> None:
        self._call(self._listen())
