"""The api's background tasks: one that dies says so at once, and never breaks the api's shutdown."""

from __future__ import annotations

import asyncio

import structlog

from api.background import BackgroundTask
from api.services import _shut_down
from tests.helpers import until


def test_a_task_that_dies_is_logged_when_it_dies_and_stop_still_returns():
    async def scenario() -> tuple[BackgroundTask, list[dict]]:
        task = BackgroundTask("doomed")
        with structlog.testing.capture_logs() as logs:
            async def work() -> None:
                raise RuntimeError("the first load failed")
            task.start(work())
            await until(lambda: any(e["event"] == "background_task_died" for e in logs), 5, "the death logged")
            died = list(logs)
        await task.stop()  # must not raise the task's own error at shutdown
        return task, died

    task, died = asyncio.run(scenario())
    assert isinstance(task.failed, RuntimeError)
    assert [e["task"] for e in died if e["event"] == "background_task_died"] == ["doomed"]


def test_a_running_task_is_cancelled_by_stop():
    async def scenario() -> BackgroundTask:
        task = BackgroundTask("forever")
        running = asyncio.Event()

        async def forever() -> None:
            running.set()
            await asyncio.sleep(3600)

        task.start(forever())
        await asyncio.wait_for(running.wait(), 5)
        await task.stop()
        return task

    task = asyncio.run(scenario())
    assert task._task is not None and task._task.cancelled() and task.failed is None


def test_shutdown_runs_every_step_even_after_one_fails():
    ran = []

    async def ok(name: str) -> None:
        ran.append(name)

    async def broken() -> None:
        ran.append("broken")
        raise OSError("broker went away mid-flush")

    asyncio.run(_shut_down([lambda: ok("scheduler"), broken, lambda: ok("publisher"), lambda: ok("materializer")]))
    assert ran == ["scheduler", "broken", "publisher", "materializer"]


def test_every_runs_the_step_again_after_one_fails():
    import asyncio

    from api.background import BackgroundTask, every

    async def run() -> int:
        calls, done = [], asyncio.Event()

        async def step() -> None:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("the first sweep fails")
            if len(calls) == 3:
                done.set()

        task = BackgroundTask("periodic")
        task.start(every(0.001, step, "periodic", first_now=True))
        await asyncio.wait_for(done.wait(), 5)
        await task.stop()
        return len(calls)

    assert asyncio.run(run()) >= 3
