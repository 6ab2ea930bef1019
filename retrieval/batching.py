"""Coalesce concurrent calls of a batch function into one call (for encoders and classifiers).

Under load, requests that arrive while a batch is running wait for the next
one, so 32 concurrent turns cost a few batched forward passes instead of 32
separate ones competing for the same cores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")


class MicroBatcher(Generic[T]):
    """Calls ``fn(items)`` in a worker thread for batches of up to ``max_batch`` items.

    A batch closes when no new item has come for ``max_wait_s``, or
    ``max_linger_s`` after its first item: a burst of requests that the event
    loop hands over one by one still lands in one batch, and a lone request
    waits only ``max_wait_s``.

    Args:
        fn: maps a list of inputs to one output per input.
        max_batch: largest batch.
        max_wait_s: the longest pause between arrivals that keeps a batch open.
        max_linger_s: the longest a batch's first item waits for company.
    """

    def __init__(self, fn: Callable[[list[str]], Sequence[T]], max_batch: int = 64,
                 max_wait_s: float = 0.002, max_linger_s: float = 0.01) -> None:
        if max_batch < 1 or max_wait_s < 0 or max_linger_s < max_wait_s:
            raise ValueError("max_batch must be positive, max_wait_s non-negative and max_linger_s >= max_wait_s")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_linger_s = max_linger_s
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[T]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        # its own thread: model calls never wait behind database work in the shared pool
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="micro-batcher")
        self.batches = 0

    async def submit(self, items: Sequence[str]) -> list[T]:
        """Results for ``items``, computed together with whatever else is waiting."""
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run(self._queue), name="micro-batcher")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[T]] = [loop.create_future() for _ in items]
        for item, future in zip(items, futures, strict=True):
            self._queue.put_nowait((item, future))
        return list(await asyncio.gather(*futures))

    async def _run(self, queue: asyncio.Queue[tuple[str, asyncio.Future[T]]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            last_call = loop.time() + self.max_linger_s
            while len(batch) < self.max_batch:
                if queue.empty():
                    remaining = min(self.max_wait_s, last_call - loop.time())
                    if remaining <= 0:
                        break
                    try:  # asyncio.timeout, not wait_for, which can swallow aclose()'s cancel on Python 3.11
                        async with asyncio.timeout(remaining):
                            batch.append(await queue.get())
                    except TimeoutError:
                        break
                else:
                    batch.append(queue.get_nowait())
            live = [(item, f) for item, f in batch if not f.done()]
            if not live:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self.fn, [item for item, _ in live])
                self.batches += 1
                for (_, future), result in zip(live, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            except Exception as exc:  # every waiter learns of the failure
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=False)
