"""A task the api runs beside its routes (recorder, scheduler, watchdog, search sync): started, then cancelled.

A task that dies on its own is logged when it dies (not at shutdown, minutes later), and `stop` never
raises its error again: shutdown must go on and stop everything else, the api's own state is still sound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class BackgroundTask:
    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[Any] | None = None

    def start(self, work: Coroutine[Any, Any, Any]) -> None:
        self._task = asyncio.create_task(work, name=self.name)
        self._task.add_done_callback(self._report)

    @property
    def failed(self) -> BaseException | None:
        """The error the task died of, if it died of one."""
        if self._task is None or not self._task.done() or self._task.cancelled():
            return None
        return self._task.exception()

    def _report(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background_task_died", task=self.name, exc_info=task.exception())

    async def stop(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def every(interval_s: float, step: Callable[[], Awaitable[object]], name: str, first_now: bool) -> None:
    """`step` every `interval_s` (first at once, or after one interval) for as long as the task runs; a step
    that fails is logged and tried again next time."""
    if not first_now:
        await asyncio.sleep(interval_s)
    while True:
        try:
            await step()
        except Exception:  # noqa: BLE001 - logged; the next step may well succeed
            log.exception("periodic_step_failed", task=name)
        await asyncio.sleep(interval_s)
