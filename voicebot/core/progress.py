"""Live progress: the placeholder shows the words recognised so far while a long voice runs.

The engine's worker thread appends segments to a :class:`Progress`; a :class:`Ticker` on the
event loop edits the placeholder with them, no more often than its interval. Progress edits
are cosmetic: a flood limit on one is never waited out, the edit is skipped and the interval
widens to what Telegram asked for, so the final transcript is never delayed by them.

Example::

    progress = Progress(duration=312.0, stopping=threading.Event(), loop=asyncio.get_running_loop())
    task = asyncio.create_task(ticker.run(progress, show))   # show(html) edits the placeholder
    engine.transcribe(samples, on_segment=progress.add)      # in a worker thread
    task.cancel()
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from loguru import logger

from voicebot.engine.base import Segment
from voicebot.errors import Interrupted, RateLimited

# Whisper hears 30 s at a time: a shorter voice's words all come at once, with the transcript.
ONE_WINDOW_S = 30.0


class Progress:
    """Segments recognised so far; written by the worker thread, read by the event loop."""

    def __init__(self, duration: float, stopping: threading.Event, loop: asyncio.AbstractEventLoop):
        self.duration = duration
        self._stopping = stopping
        self._segments: list[Segment] = []
        self._loop = loop
        self._added = asyncio.Event()

    def add(self, segment: Segment) -> None:
        if self._stopping.is_set():
            raise Interrupted("shutting down")  # ends the engine's loop in the worker thread
        self._segments.append(segment)  # atomic under the GIL; the loop only reads
        try:
            self._loop.call_soon_threadsafe(self._added.set)
        except RuntimeError:  # the loop is closed: nobody is watching
            pass

    async def beyond(self, count: int) -> None:
        """Return once there are more than ``count`` segments."""
        while self.count <= count:
            self._added.clear()
            if self.count > count:
                break
            await self._added.wait()

    @property
    def count(self) -> int:
        return len(self._segments)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self._segments)

    @property
    def percent(self) -> int:
        if not self._segments or not self.duration:
            return 0
        return min(99, int(100 * self._segments[-1].end / self.duration))


class Ticker:
    """Paces progress edits; ``interval`` (seconds, 0 = off) widens on a flood limit and
    stays wide for the jobs that follow."""

    def __init__(self, interval: float):
        self.interval = interval

    def wanted(self, duration: float | None) -> bool:
        """Whether a recording of ``duration`` seconds (None: not known yet) is worth progress
        edits: longer than one Whisper window, whose words would all come with the transcript."""
        return bool(self.interval) and (duration is None or duration > ONE_WINDOW_S)

    async def run(self, progress: Progress, show: Callable[[int, str], Awaitable[None]]) -> None:
        """Call ``show(percent, text_so_far)``: the first words as soon as they exist, then
        whenever there are new ones, no more often than the interval, until cancelled."""
        shown = 0
        while True:
            await progress.beyond(shown)
            shown = progress.count
            try:
                await show(progress.percent, progress.text)
            except RateLimited as exc:
                self.interval = max(self.interval * 2, exc.seconds)
                logger.info("flood limit on progress edits: {}s; interval now {}s", exc.seconds, self.interval)
            except Exception as exc:
                logger.debug("progress edit failed: {}", exc)
            await asyncio.sleep(self.interval)
