"""The job queue: a bounded queue, a fixed number of workers, and a thread pool for CPU work.

The asyncio loop only schedules; decoding and transcription run in :meth:`JobQueue.run_blocking`
threads (CTranslate2 and FFmpeg release the GIL), so the bot answers while a job runs.

Example::

    async def handle(job): ...
    queue = JobQueue(handle, workers=1, maxsize=100)
    queue.start()
    if not queue.submit(job):
        ...  # full: tell the user to try later
    await queue.stop()
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from loguru import logger

THREAD_PREFIX = "voicebot-cpu"  # the worker threads' names: app.abandon_running_work finds them by it

T = TypeVar("T")
R = TypeVar("R")


class JobQueue(Generic[T]):
    """Runs ``handler(job)`` for submitted jobs, at most ``workers`` at a time."""

    def __init__(self, handler: Callable[[T], Awaitable[None]], *, workers: int, maxsize: int):
        self._handler = handler
        self._workers = workers
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize=maxsize)
        self._tasks: list[asyncio.Task] = []
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=THREAD_PREFIX)
        self._since: collections.deque[float] = collections.deque()  # when each waiting job came, in order
        self.running = 0
        self.done = 0

    @property
    def waiting(self) -> int:
        """Jobs submitted but not started."""
        return self._queue.qsize()

    @property
    def oldest_wait(self) -> float:
        """Seconds the oldest waiting job has waited; 0.0 when none waits. Safe to read from
        another thread (the metrics server's)."""
        try:
            return max(time.monotonic() - self._since[0], 0.0)
        except IndexError:
            return 0.0

    @property
    def busy(self) -> bool:
        """True when a new job would have to wait."""
        return self.running + self.waiting >= self._workers

    def start(self) -> None:
        """Start the workers (inside a running event loop)."""
        self._tasks = [asyncio.create_task(self._work(), name=f"voicebot-worker-{i}") for i in range(self._workers)]

    def submit(self, job: T) -> bool:
        """Queue ``job``; ``False`` when the queue is full (nothing queued then)."""
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            return False
        self._since.append(time.monotonic())
        return True

    async def run_blocking(self, fn: Callable[..., R], *args, **kwargs) -> R:
        """Run CPU-bound ``fn`` in the worker threads, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def join(self) -> None:
        """Wait until every submitted job has finished."""
        await self._queue.join()

    async def stop(self) -> None:
        """Cancel the workers and shut the threads down (a running job's thread finishes)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self.running += 1
            with contextlib.suppress(IndexError):
                self._since.popleft()
            try:
                await self._handler(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # the handler reports its own failures; this is the last net
                logger.exception("job failed unexpectedly")
            finally:
                self.running -= 1
                self.done += 1
                self._queue.task_done()
