"""The managed vLLM serving an adapter merged into the weights, swapped blue/green when the adapter changes.

vLLM's CPU build runs a LoRA-enabled server without ``torch.compile`` and applies
adapters with plain PyTorch ops: measured on SmolLM2-135M (docs/benchmarks.md), the
base model lost about 40% of its tokens/s once LoRA was enabled and adapter requests
ran at a third of the base speed. So on the CPU build the managed server runs
without LoRA, on weights with the live adapter merged in. A new adapter is merged
into a new model directory and served by a second vLLM started beside the first;
new requests move to it once it answers, requests already streaming finish on the
old server, which is then stopped. Nothing is refused during the swap.

Each server answers to its own name (the adapter's, or the base name) and to the
base name, and requests are always sent as the live server's model, so a request
built just before a swap still gets an answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.llm.base import GenerationRequest, LLMBackend, LLMUnavailable, StreamItem, Usage
from bot.llm.managed import ManagedVLLM, ManagedVLLMConfig

log = logging.getLogger("aisle.llm")

Connect = Callable[[str, str], LLMBackend]
"""Builds the HTTP backend for a server: (base URL, served model name) -> backend."""


@dataclass
class Server:
    managed: ManagedVLLM
    backend: LLMBackend
    adapter: str | None
    streams: int = 0


class SwappingVLLM(LLMBackend):
    """A managed vLLM whose weights are replaced without downtime (see the module docstring).

    Args:
        config: how to launch a server; its model and names are replaced per swap.
        connect: the backend for a started server.
        merge: merges (adapter directory, adapter name) into a model directory, blocking.
        port_for: a free port for the next server.
        server_class: what runs a server (tests put a stand-in here).
    """

    name = "vllm"

    def __init__(self, config: ManagedVLLMConfig, connect: Connect, merge: Callable[[Path, str], Path],
                 port_for: Callable[[], int], server_class: type[ManagedVLLM] = ManagedVLLM) -> None:
        self.config = config
        self.server_class = server_class
        self.connect = connect
        self.merge = merge
        self.port_for = port_for
        self.live: Server | None = None
        self._swap = asyncio.Lock()
        self._stopping: set[asyncio.Task[None]] = set()
        self._launching: set[ManagedVLLM] = set()  # started or starting, not yet live: stopped if we close first
        self._closed = False

    def start(self, adapter: tuple[str, Path] | None = None) -> None:
        """Start the first server (blocking), on the merged adapter if one is given."""
        name, source = adapter if adapter is not None else (None, None)
        self.live = self._adopt(self._launch(name, source, self.config.port))

    def _launch(self, adapter: str | None, source: Path | None, port: int) -> Server:
        model_dir = self.merge(source, adapter) if source is not None and adapter else self.config.model_dir
        name = adapter or self.config.served_model_name
        aliases = (self.config.served_model_name,) if adapter else ()
        log_path = self.config.log_path.with_name(f"vllm-{adapter}.log") if adapter else self.config.log_path
        config = dataclasses.replace(self.config, model_dir=model_dir, served_model_name=name, aliases=aliases,
                                     port=port, enable_lora=False, log_path=log_path)
        managed = self.server_class(config)
        self._launching.add(managed)  # until it is adopted as live: if we close first, it is stopped
        if self._closed:  # closed while the adapter was being merged: start() now refuses
            managed.stop()
        try:
            url = managed.start()
        except BaseException:
            self._launching.discard(managed)
            raise
        return Server(managed, self.connect(url, name), adapter)

    def _adopt(self, server: Server) -> Server:
        self._launching.discard(server.managed)
        return server

    @property
    def model_name(self) -> str:
        return self._server().backend.model_name

    @property
    def adapter(self) -> str | None:
        return self._server().adapter

    def _server(self) -> Server:
        if self.live is None:
            raise LLMUnavailable("the managed vLLM has not been started")
        return self.live

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        server = self._server()
        server.streams += 1
        try:
            async for item in server.backend.stream(dataclasses.replace(request, model=None)):
                yield dataclasses.replace(item, adapter=server.adapter) if isinstance(item, Usage) else item
        finally:
            server.streams -= 1
            if server is not self.live and server.streams == 0:
                self._retire(server)

    async def health(self) -> bool:
        return await self._server().backend.health()

    async def load_adapter(self, name: str, path: str) -> None:
        await self._serve(name, Path(path))

    async def unload_adapter(self, name: str) -> None:
        if self.adapter == name:
            await self._serve(None, None)

    async def _serve(self, adapter: str | None, source: Path | None) -> None:
        async with self._swap:
            old = self._server()
            if old.adapter == adapter:
                return
            log.info("starting vLLM on %s beside the running one", adapter or "the base model")
            try:
                fresh = await asyncio.to_thread(self._launch, adapter, source, self.port_for())
            except Exception as exc:  # the running server keeps serving
                raise LLMUnavailable(f"could not start vLLM on {adapter or 'the base model'}: {exc}") from exc
            self.live = self._adopt(fresh)
            log.info("vLLM on %s is live; the old server stops after its %d streams", adapter or "the base model",
                     old.streams)
            if old.streams == 0:
                self._retire(old)

    def _retire(self, server: Server) -> None:
        """Stop a server in the background: a stream's end never waits for a process to exit."""
        task = asyncio.create_task(self._stop(server), name="vllm-retire")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    @staticmethod
    async def _stop(server: Server) -> None:
        await server.backend.aclose()
        await asyncio.to_thread(server.managed.stop)

    async def aclose(self) -> None:
        self._closed = True
        for managed in list(self._launching):  # a swap under way when the app stops: its server must not outlive us
            await asyncio.to_thread(managed.stop)
        await asyncio.gather(*self._stopping, return_exceptions=True)
        if self.live is not None:
            await self._stop(self.live)
            self.live = None
