"""What the api process runs besides its routes, built once at start-up and handed to routes as typed dependencies.

The api hosts the DuckDB file (`Store`, see pipeline/storage/store.py for why here): its materializer is the
file's one writer, the routes and the loops below read and write it through the same `Store`. Everything a route
needs comes from `api/deps.py` (`StoreDep`, `PublisherDep`, `JobsDep`, …), never from `app.state` directly, so a
test can replace any part with `app.dependency_overrides` and run a route with no broker and no worker
(tests/unit/test_routes_without_a_broker.py).

| part | what it does |
|---|---|
| `store` | the DuckDB file; every query runs through it, off the event loop |
| `materializer` | reads the result topics and writes them into the file, in batches (the single writer) |
| `publisher` | the api's one Kafka producer: every route that publishes goes through it |
| `calls` | the call recorder: one call-history event per request the api answers, to `calls.raw` |
| `predictor` | starts a prediction (checks, the IN_PROGRESS row, the request event) |
| `scheduler` | AUTO_SCHEDULE predictions, retries and timeouts |
| `jobs` | creates and steers ingest jobs; its watchdog re-issues a job whose worker went quiet |
| `search` | the in-memory search index, kept in step with the stored vectors |
| `alerts` | seed 000's four alerts, evaluated every few seconds (api/alerts.py) |
| `ingest_schedules` | recurring ingest collections, started when due (api/ingest/schedules.py) |
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from api.alerts import Alerts
from api.console.rates import TopicRates
from api.ingest.jobs import Jobs
from api.ingest.schedules import IngestSchedules
from api.parquet_exports import ParquetExports
from api.predicting import Predictor
from api.publish import Publisher
from api.recorder import CallBuffer
from api.retention import Retention
from api.scheduler import Scheduler
from api.search_service import SearchService
from pipeline.broker.kafka import cluster_id
from pipeline.broker.lag import LagProbe
from pipeline.settings import Settings
from pipeline.storage.materializer import Materializer
from pipeline.storage.queries import operations as ops
from pipeline.storage.sinks import platform_sinks
from pipeline.storage.store import Store

log = structlog.get_logger(__name__)


class BrokerHealth:
    """The broker's liveness for /health, asked at most every 2 s (the routes publish through the Publisher)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._health: tuple[float, dict[str, Any]] | None = None

    async def __call__(self) -> dict[str, Any]:
        if self._health and time.monotonic() - self._health[0] < 2.0:
            return self._health[1]
        try:
            bootstrap = self.settings.bootstrap()
            cid = await asyncio.wait_for(cluster_id(bootstrap, timeout_s=1.0), 1.5)  # /health answers in < 2 s
            result: dict[str, Any] = {"ok": True, "bootstrap": bootstrap, "cluster_id": cid}
        except Exception as exc:  # noqa: BLE001
            result = {"ok": False, "error": str(exc) or type(exc).__name__}
        self._health = (time.monotonic(), result)
        return result


@dataclass
class Services:
    settings: Settings
    store: Store
    materializer: Materializer
    publisher: Publisher
    broker_health: BrokerHealth
    calls: CallBuffer
    predictor: Predictor
    scheduler: Scheduler
    jobs: Jobs
    search: SearchService
    retention: Retention
    parquet: ParquetExports
    alerts: Alerts
    ingest_schedules: IngestSchedules
    topic_rates: TopicRates = field(default_factory=TopicRates)  # the console's per-topic rates
    group_lags: LagProbe | None = None  # the console's consumer-group lag, asked at most every 10 s
    background: set[asyncio.Task[Any]] = field(default_factory=set)  # data exports, held so they are not collected

    @classmethod
    def build(cls, settings: Settings, store: Store, calls: CallBuffer | None = None) -> Services:
        """Every part, wired to the file and to one publisher; nothing started, nothing connected yet."""
        materializer = Materializer(settings, store.con, platform_sinks(settings))
        publisher = Publisher(settings)
        predictor = Predictor(settings, store, publisher)
        jobs = Jobs(settings, store, publisher)
        search = SearchService(settings, store, publisher)
        jobs.on_purge = search.forget
        return cls(settings=settings, store=store, materializer=materializer, publisher=publisher,
                   broker_health=BrokerHealth(settings), calls=calls or CallBuffer(settings), predictor=predictor,
                   scheduler=Scheduler(settings, store, predictor, ready=materializer.started_caught_up.is_set),
                   jobs=jobs, search=search, retention=Retention(settings, store),
                   parquet=ParquetExports(settings, store), alerts=Alerts(settings, store),
                   ingest_schedules=IngestSchedules(settings, store, jobs), group_lags=LagProbe(settings))

    async def start(self) -> None:
        """The materializer, the recorder and the loops."""
        self.jobs.start_watchdog()
        self.search.start()
        self.materializer.start()
        await self.calls.start()
        self.scheduler.start()
        self.retention.start()
        self.parquet.start()
        self.alerts.start()
        self.ingest_schedules.start()

    async def workers(self) -> list[dict[str, Any]]:
        """Workers seen lately (heartbeats in DuckDB): id, host, pid, seconds since the last beat, alive, and the
        counters it reported (events per topic and outcome)."""
        stale_after = self.settings.worker_stale_after_s
        rows = await self.store.run(ops.recent_workers, stale_after * 6)
        now = time.time()
        return [{"worker_id": w, "host": h, "pid": p, "seconds_since_heartbeat": round(now - ts, 1),
                 "alive": now - ts <= stale_after, "counters": orjson.loads(c or "[]")}
                for w, h, p, ts, c in rows]

    def run_in_background(self, work: Awaitable[Any]) -> None:
        """A task that outlives its request (a data export); held until it finishes."""
        task = asyncio.ensure_future(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def stop(self) -> None:
        """Every part stops, whatever an earlier one raised; the file is closed last, unless still being written."""
        await _shut_down([self.ingest_schedules.stop, self.alerts.stop, self.parquet.stop, self.retention.stop,
                          self.scheduler.stop, self.jobs.stop, self.search.stop, self.calls.stop,
                          self.publisher.close,
                          lambda: asyncio.to_thread(self.materializer.stop)])
        if self.materializer.alive:  # still inside a write: closing the file under it would fail that write
            log.error("api_shutdown_materializer_still_running")
        else:
            self.store.close()


async def _shut_down(steps: list[Callable[[], Awaitable[object]]]) -> None:
    """Every step runs, whatever an earlier one raised: one stuck part must not leave the others running."""
    for step in steps:
        started = time.monotonic()
        try:
            await step()
            if time.monotonic() - started > 1.0:
                log.warning("api_shutdown_step_slow", step=getattr(step, "__qualname__", repr(step)),
                            seconds=round(time.monotonic() - started, 1))
        except Exception:  # noqa: BLE001 - logged; the remaining parts still have to stop
            log.exception("api_shutdown_step_failed", step=getattr(step, "__qualname__", repr(step)))
