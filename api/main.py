"""create_app(): the FastAPI facade. It publishes requests, serves reads from DuckDB, runs the materializer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.cod import PREFIXES
from api.errors import install_error_handlers
from api.ingest_jobs import Jobs
from api.limits import BodyLimitMiddleware
from api.predicting import Predictor
from api.publish import Publisher
from api.recorder import CallBuffer, CallRecorderMiddleware
from api.responses import COD_ERRORS, PLATFORM_ERRORS
from api.routers import (
    calls,
    export,
    health,
    ingest,
    ingest_metrics,
    performance,
    predictions,
    schedules,
    search,
    sleep_admin,
    sql,
)
from api.scheduler import Scheduler
from api.search_service import SearchService
from pipeline.broker.kafka import cluster_id
from pipeline.logging import configure_logging
from pipeline.settings import Settings, get_settings
from pipeline.storage.db import connect
from pipeline.storage.materializer import Materializer
from pipeline.storage.sinks import platform_sinks

log = structlog.get_logger(__name__)


class BrokerHealth:
    """The broker's liveness for /health, asked at most every 2 s (the routes publish through api/publish.py)."""

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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    buffer = CallBuffer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = connect(settings.db_path)
        materializer = Materializer(settings, db, platform_sinks(settings))
        app.state.settings = settings
        app.state.db = db
        app.state.materializer = materializer
        app.state.calls = buffer
        publisher = Publisher(settings)
        app.state.publisher = publisher
        app.state.broker_health = BrokerHealth(settings)
        app.state.predictor = Predictor(settings, db, publisher)
        scheduler = Scheduler(settings, db, app.state.predictor, ready=materializer.started_caught_up.is_set)
        app.state.scheduler = scheduler
        app.state.jobs = Jobs(settings, db, publisher)
        app.state.jobs.start_watchdog()
        app.state.search = SearchService(settings, db, publisher)
        app.state.jobs.on_purge = app.state.search.forget
        app.state.search.start()
        app.state.background = set()  # tasks the api started (data exports), held so they are not collected
        materializer.start()
        await buffer.start()
        scheduler.start()
        log.info("api_started", host=settings.api_host, port=settings.api_port, db=str(settings.db_path))
        try:
            yield
        finally:
            await _shut_down([scheduler.stop, app.state.jobs.stop, app.state.search.stop, buffer.stop,
                              publisher.close, lambda: asyncio.to_thread(materializer.stop)])
            if materializer.alive:  # still inside a write: closing the file under it would fail that write
                log.error("api_shutdown_materializer_still_running")
            else:
                db.close()

    app = FastAPIOffline(
        title="streamdesk",
        version="0.1.0",
        description="Call histories, tickets and predictions over Kafka, Faust and DuckDB.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (health.router, calls.router, sql.router, ingest_metrics.router, search.router, ingest.router):
        app.include_router(router, responses=PLATFORM_ERRORS)
    for prefix in PREFIXES:  # seed 004 names the same routes under both prefixes
        for router in (predictions.router, schedules.router, performance.router, sleep_admin.router, export.router):
            app.include_router(router, prefix=prefix, responses=COD_ERRORS)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_message_bytes)  # inside the recorder: 413s are rows
    app.add_middleware(CallRecorderMiddleware, buffer=buffer, settings=settings)
    return app


async def _shut_down(steps: list[Callable[[], Awaitable[object]]]) -> None:
    """Every step runs, whatever an earlier one raised: one stuck part must not leave the others running."""
    for step in steps:
        try:
            await step()
        except Exception:  # noqa: BLE001 - logged; the remaining parts still have to stop
            log.exception("api_shutdown_step_failed", step=getattr(step, "__qualname__", repr(step)))
