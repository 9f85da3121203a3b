"""The Freshdesk client against a real simulator on loopback: complete, resumable, patient, and quiet about keys."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from pipeline.ingest.freshdesk.client import FreshdeskClient
from pipeline.ingest.freshdesk.errors import FreshdeskAuthError, FreshdeskDomainError, FreshdeskUnavailable
from pipeline.ingest.freshdesk.ratelimit import RateBudget, budget_for
from pipeline.ingest.freshdesk.records import TicketCursor
from pipeline.ingest.freshdesk.threads import iter_threads
from simulators.freshdesk.fixtures import Dataset
from simulators.freshdesk.server import SimulatorServer
from simulators.freshdesk.state import SimulatorConfig

END = datetime(2026, 1, 1, tzinfo=UTC)
DOMAIN = "acme.freshdesk.com"


@pytest.fixture
def simulator() -> Iterator[Callable[..., SimulatorServer]]:
    servers: list[SimulatorServer] = []

    def start(**config: Any) -> SimulatorServer:
        server = SimulatorServer(SimulatorConfig(**({"tickets": 60, "end": END, "plan": 100_000} | config)))
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def connect(server: SimulatorServer, key: str = "your_api_key", **options: Any) -> FreshdeskClient:
    defaults: dict[str, Any] = {"budget": RateBudget(server.config.plan, server.config.window_seconds),
                                "backoff_s": 0.01, "backoff_max_s": 0.05, "per_page": server.config.per_page_max}
    return FreshdeskClient(options.pop("domain", DOMAIN), SecretStr(key), base_url=server.base_url,
                           **(defaults | options))


def account(server: SimulatorServer, domain: str = DOMAIN) -> Dataset:
    return server.app.sim.dataset(domain)  # read between requests only: the server is idle then


async def ticket_ids(client: FreshdeskClient, **kwargs: Any) -> list[int]:
    return [t["id"] async for t in client.iter_tickets(**kwargs)]


def test_a_full_run_across_the_page_cap_returns_every_ticket_and_conversation_exactly_once(simulator):
    server = simulator(tickets=300, per_page_max=2, max_page=5)

    async def run() -> tuple[list, FreshdeskClient]:
        async with connect(server) as client:
            return [t async for t in iter_threads(client)], client

    threads, client = asyncio.run(run())
    data = account(server)
    assert sorted(t.ticket["id"] for t in threads) == list(range(1, 301))
    for thread in threads:
        expected = [c.record["id"] for c in data.tickets[thread.ticket["id"]].conversations]
        assert [c["id"] for c in thread.conversations] == expected
    assert client.stats.restarts >= 29 and client.stats.duplicates >= 29  # 300 tickets, 10 per window
    assert server.stats()["domains"][DOMAIN].get("throttled", 0) == 0


def test_a_client_that_knows_the_cap_restarts_before_hitting_it(simulator):
    server = simulator(tickets=50, per_page_max=2, max_page=5)

    async def run() -> list[int]:
        async with connect(server, max_page=5) as client:
            return await ticket_ids(client)

    assert sorted(asyncio.run(run())) == list(range(1, 51))
    assert "400" not in server.stats()["by_status"]


def test_an_incremental_run_after_updates_returns_exactly_the_updated_tickets_with_their_new_replies(simulator):
    server = simulator(tickets=120, per_page_max=10)

    async def run() -> tuple[list[int], list[int], set[int], list[int]]:
        async with connect(server) as client:
            await ticket_ids(client)
            cursor = client.cursor
            changed = await asyncio.to_thread(server.apply_updates, 9, DOMAIN, 1.0)
            threads = [t async for t in iter_threads(client, cursor=cursor)]
            again = await ticket_ids(client, cursor=threads[-1].cursor)
            replied = {t.ticket["id"] for t in threads if t.conversations and t.conversations[-1]["incoming"]}
            return changed, [t.ticket["id"] for t in threads], replied, again

    changed, incremental, replied, again = asyncio.run(run())
    assert sorted(incremental) == changed and len(changed) == 9
    assert replied == set(changed)
    assert again == []


def test_a_paused_listing_resumes_from_its_saved_cursor_without_gaps_or_repeats(simulator):
    server = simulator(tickets=90, per_page_max=7)

    async def run() -> tuple[list[int], list[int]]:
        first: list[int] = []
        async with connect(server) as client:
            async for ticket in client.iter_tickets():
                first.append(ticket["id"])
                if len(first) == 40:
                    break
            assert client.cursor is not None
            saved = client.cursor.to_dict()
        async with connect(server) as client:
            return first, await ticket_ids(client, cursor=TicketCursor.from_dict(saved))

    first, rest = asyncio.run(run())
    assert sorted(first + rest) == list(range(1, 91))


def test_retries_ride_out_5xx_bursts_and_dropped_connections(simulator):
    server = simulator(tickets=30)
    server.set_faults(drop_next=2, errors_next=2)

    async def run() -> tuple[list[int], FreshdeskClient]:
        async with connect(server, max_retries=5) as client:
            return await ticket_ids(client), client

    ids, client = asyncio.run(run())
    assert sorted(ids) == list(range(1, 31))
    assert client.stats.retries == 4 and client.stats.errors == 4
    assert server.stats()["by_endpoint"]["GET /api/v2/tickets"] == {"dropped": 2, "503": 2, "200": 1}


def test_a_request_that_times_out_is_retried_instead_of_waited_for(simulator):
    server = simulator(tickets=30)
    server.set_faults(slow_next=1, slow_s=3.0)

    async def run() -> tuple[list[int], FreshdeskClient, float]:
        # 1 s, not less: on a loaded 2-core CI machine an ordinary page once took over 0.3 s and was retried too.
        async with connect(server, timeout_s=1.0) as client:
            started = time.monotonic()
            return await ticket_ids(client), client, time.monotonic() - started

    ids, client, elapsed = asyncio.run(run())
    assert sorted(ids) == list(range(1, 31)) and elapsed < 2.5  # not waited out: the slow answer takes 3 s
    assert client.stats.errors == 1 and client.stats.retries == 1


def test_random_server_errors_over_a_whole_run_lose_nothing(simulator):
    server = simulator(tickets=150, per_page_max=5)
    server.set_faults(error_rate=0.15, drop_rate=0.05)

    async def run() -> tuple[list, FreshdeskClient]:
        async with connect(server, max_retries=8) as client:
            return [t async for t in iter_threads(client)], client

    threads, client = asyncio.run(run())
    assert sorted(t.ticket["id"] for t in threads) == list(range(1, 151))
    assert sum(len(t.conversations) for t in threads) == sum(len(t.conversations) for t in
                                                              account(server).tickets.values())
    assert client.stats.retries > 10


def test_retries_are_bounded_and_then_fail_clearly(simulator):
    server = simulator()
    server.set_faults(errors_next=10)

    async def run() -> None:
        async with connect(server, max_retries=2) as client:
            await ticket_ids(client)

    with pytest.raises(FreshdeskUnavailable, match="after 3 attempts"):
        asyncio.run(run())
    assert server.stats()["by_endpoint"]["GET /api/v2/tickets"] == {"503": 3}


def test_an_injected_429_is_waited_out_for_its_retry_after(simulator):
    server = simulator(tickets=10)
    server.set_faults(throttle_next=1, throttle_retry_after_s=1)

    async def run() -> tuple[list[int], FreshdeskClient, float]:
        async with connect(server) as client:
            started = time.monotonic()
            return await ticket_ids(client), client, time.monotonic() - started

    ids, client, elapsed = asyncio.run(run())
    assert sorted(ids) == list(range(1, 11)) and elapsed >= 1.0
    assert client.stats.throttled == 1 and client.budget.waited_s >= 0.9


def test_a_rejected_key_raises_auth_error_that_never_shows_the_key(simulator):
    server = simulator(keys={"*": ["the-right-key"]})
    secret = "sk-wrong-4f9a1c2e77"

    async def run() -> FreshdeskClient:
        async with connect(server, key=secret) as client:
            await ticket_ids(client)
            return client

    with capture_logs() as logs, pytest.raises(FreshdeskAuthError, match="rejected the API key") as caught:
        asyncio.run(run())
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert caught.value.__cause__ is None and secret not in repr(logs)
    assert secret not in repr(connect(server, key=secret))
    assert server.stats()["by_status"] == {"401": 1}  # not retried


def test_an_unknown_domain_raises_domain_error(simulator):
    server = simulator(domains=[DOMAIN])

    async def run() -> None:
        async with connect(server, domain="nobody.freshdesk.com") as client:
            await ticket_ids(client)

    with pytest.raises(FreshdeskDomainError, match="nobody.freshdesk.com"):
        asyncio.run(run())


def test_two_clients_of_one_domain_share_one_budget_and_never_run_into_a_429(simulator):
    plan, window = 60, 3.0  # 3 % headroom of 3 s absorbs ~90 ms of scheduling jitter on a busy machine
    server = simulator(tickets=20, plan=plan, window_seconds=window)
    domain = f"shared-{uuid.uuid4().hex[:8]}.freshdesk.com"
    budget = budget_for(domain, per_window=plan, window_s=window)

    async def hammer(client: FreshdeskClient, until: float) -> None:
        while time.monotonic() < until:
            async for _ in client.iter_kb():
                pass

    async def run() -> tuple[FreshdeskClient, FreshdeskClient, float]:
        one = connect(server, domain=domain, budget=None)
        two = connect(server, domain=domain, budget=None)
        started = time.monotonic()
        await asyncio.gather(hammer(one, started + 3.5), hammer(two, started + 3.5))
        await one.aclose()
        await two.aclose()
        return one, two, time.monotonic() - started

    one, two, elapsed = asyncio.run(run())
    assert one.budget is two.budget is budget
    used = server.stats()["domains"][domain]
    assert used.get("throttled", 0) == 0 and used["peak_window_credits"] <= plan
    assert used["credits"] >= 0.85 * plan * elapsed / window  # the budget is used, not hoarded
    assert one.stats.requests > 10 and two.stats.requests > 10


def test_conversation_calls_are_skipped_only_for_tickets_nobody_touched(simulator):
    server = simulator(tickets=300)

    async def run() -> FreshdeskClient:
        async with connect(server) as client:
            async for _ in iter_threads(client):
                pass
            return client

    client = asyncio.run(run())
    tickets = account(server).tickets.values()
    untouched = [t for t in tickets if t.updated == t.created]
    assert all(not t.conversations for t in untouched) and untouched
    calls = server.stats()["by_endpoint"]
    assert calls["GET /api/v2/tickets/{id}/conversations"]["200"] == 300 - len(untouched)
    assert client.stats.requests / 300 <= 1.05


def test_the_knowledge_base_comes_category_then_folders_then_their_articles(simulator):
    server = simulator(kb_articles=25, per_page_max=4)

    async def run() -> list[tuple[str, dict]]:
        async with connect(server) as client:
            return [item async for item in client.iter_kb()]

    items = asyncio.run(run())
    kinds = [kind for kind, _ in items]
    assert kinds.count("kb_category") == 3 and kinds.count("kb_folder") == 9 and kinds.count("kb_article") == 25
    folder_of = category_of = None
    for kind, record in items:
        if kind == "kb_category":
            category_of = record
        if kind == "kb_folder":
            folder_of = record
        if kind == "kb_article":  # named from the walk, so an article alone in its batch still has both names
            assert record["folder_id"] == folder_of["id"] and record["folder_name"] == folder_of["name"]
            assert record["category_name"] == category_of["name"] and record["category_id"] == category_of["id"]


def test_attachments_download_whole_below_the_cap_and_not_at_all_above_it(simulator):
    server = simulator(tickets=200)

    async def run() -> tuple:
        async with connect(server) as client:
            files = [a async for t in client.iter_tickets() for a in t["attachments"]]
            small, large = min(files, key=lambda a: a["size"]), max(files, key=lambda a: a["size"])
            whole = await client.download_attachment(small["attachment_url"])
            skipped = await client.download_attachment(large["attachment_url"], max_bytes=large["size"] - 1)
            return small, whole, skipped, client

    small, whole, skipped, client = asyncio.run(run())
    assert len(whole.content) == small["size"] and not whole.truncated and not whole.oversize
    assert skipped.oversize and skipped.content == b""
    assert client.stats.download_bytes == small["size"]
    assert "GET /_simulator/files" not in str(server.stats()["by_endpoint"])  # downloads spend no API credits


def test_a_body_longer_than_declared_is_cut_at_the_cap():
    async def undeclared() -> Any:
        for _ in range(10):
            yield b"x" * 40_000

    def lying(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=undeclared(), headers={"content-type": "text/plain"})

    async def run() -> Any:
        async with FreshdeskClient(DOMAIN, SecretStr("k"), transport=httpx.MockTransport(lying),
                                   budget=RateBudget(700)) as client:
            return await client.download_attachment("https://files.example.invalid/a.txt", max_bytes=100_000)

    got = asyncio.run(run())
    assert got.truncated and len(got.content) == 100_000


def test_me_confirms_a_key_and_a_rejected_key_is_asked_once_never_retried(simulator):
    server = simulator(keys={"*": ["the-right-key"]}, domains=[DOMAIN])

    async def me(key: str, domain: str = DOMAIN) -> dict[str, Any]:
        async with connect(server, key=key, domain=domain) as client:
            return await client.me()

    assert asyncio.run(me("the-right-key"))["contact"]["email"] == f"support@{DOMAIN}"
    server.reset_stats()
    with pytest.raises(FreshdeskAuthError, match="rejected the API key"):
        asyncio.run(me("sk-wrong"))
    assert server.stats()["by_endpoint"]["GET /api/v2/agents/me"] == {"401": 1}
    with pytest.raises(FreshdeskDomainError, match="no Freshdesk account"):
        asyncio.run(me("the-right-key", "nobody.freshdesk.com"))
