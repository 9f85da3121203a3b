"""Seed 000's `priority_change` with teeth: on one Freshdesk account's rate budget an urgent job's requests go
before a low job's that were already waiting, and a job's priority is read at every request, so a change
applies to its next call."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import SecretStr

from pipeline.ingest.freshdesk.client import FreshdeskClient
from pipeline.ingest.freshdesk.ratelimit import PRIORITY_RANK, RateBudget
from tests.helpers import until


def _grants(late_rank: int) -> list[str]:
    """Four workers of a low job drain a 60-credit/s budget; after its 10th grant another job asks for 10."""

    async def run() -> list[str]:
        budget = RateBudget(per_window=60, window_s=1.0)
        order: list[str] = []

        async def worker(name: str, rank: int, n: int) -> None:
            for _ in range(n):
                await budget.acquire(1, rank)
                order.append(name)

        low = [asyncio.create_task(worker("low", PRIORITY_RANK["low"], 15)) for _ in range(4)]
        # The low job well under way, with its workers waiting in line.
        await until(lambda: len(order) >= 10, 10, "the low job's first ten grants")
        late = asyncio.create_task(worker("late", late_rank, 10))
        await asyncio.gather(*low, late)
        return order

    return asyncio.run(run())


def _low_between_first_and_last(order: list[str], name: str) -> int:
    first, last = order.index(name), len(order) - 1 - order[::-1].index(name)
    return order[first:last + 1].count("low")


def test_an_urgent_job_overtakes_a_low_one_on_the_same_account():
    order = _grants(PRIORITY_RANK["urgent"])
    assert order.count("late") == 10 and order.count("low") == 60
    assert _low_between_first_and_last(order, "late") == 0  # its ten requests, one after the other
    assert order.index("late") < 20  # served as soon as it asked, not after the low job's 50 waiting requests


def test_at_one_priority_the_line_is_first_come_first_served():
    order = _grants(PRIORITY_RANK["low"])
    assert _low_between_first_and_last(order, "late") >= 20  # it waits its turn among the low job's workers


def test_the_client_reads_the_jobs_priority_at_every_request():
    ranks: list[int] = []

    class Recording(RateBudget):
        async def acquire(self, cost: int = 1, rank: int = 2) -> None:
            ranks.append(rank)

    priority = ["low"]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"id": 1}))

    async def run() -> None:
        async with FreshdeskClient("acme.freshdesk.com", SecretStr("k"), budget=Recording(per_window=100),
                                   transport=transport, priority=lambda: priority[0]) as client:
            await client.me()
            priority[0] = "urgent"  # a priority_change while the job runs
            await client.me()

    asyncio.run(run())
    assert ranks == [PRIORITY_RANK["low"], PRIORITY_RANK["urgent"]]
