"""A task the api runs beside its routes (recorder, scheduler, watchdog, search sync): started, then cancelled.

A task that dies on its own is logged when it dies (not at shutdown, minutes later), and `stop` never
raises its error again: shutdown must go on and stop everything else, the api's own state is still sound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
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
