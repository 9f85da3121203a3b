"""create_app(): the FastAPI facade. It publishes requests, serves reads from DuckDB, runs the materializer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from api.cod_envelope import PREFIXES
from api.console import routes as console
from api.errors import install_error_handlers
from api.ingest import metrics as ingest_metrics
from api.ingest import routes as ingest
from api.limits import BodyLimitMiddleware
from api.recorder import CallBuffer, CallRecorderMiddleware
from api.responses import COD_ERRORS, PLATFORM_ERRORS
from api.routers import (
    calls,
    export,
    health,
    parquet,
    performance,
    predictions,
    schedules,
    search,
    sleep_admin,
    sql,
    traces,
)
from api.services import Services
from pipeline.logging import configure_logging
from pipeline.settings import Settings, get_settings
from pipeline.storage.store import Store

log = structlog.get_logger(__name__)
# What a browser may send across origins: the seed's gateway headers (seed 003's frontend sends X-Agent-ID).
CORS_HEADERS = ["Authorization", "Content-Type", "X-Agent-ID", "X-Tenant-ID", "X-User-ID", "X-DWP-Source",
                "X-Company-ID", "X-API-Key", "traceparent"]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    buffer = CallBuffer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.open(settings.db_path, settings.duckdb_memory_limit_mb)
        app.state.services = Services.build(settings, store, buffer)
        await app.state.services.start()
        log.info("api_started", host=settings.api_host, port=settings.api_port, db=str(settings.db_path))
        try:
            yield
        finally:
            await app.state.services.stop()

    app = FastAPIOffline(
        title="streamdesk",
        version="0.1.0",
        description="Call histories, tickets and predictions over Kafka, Faust and DuckDB.",
        lifespan=lifespan,
    )
    app.state.settings = settings  # resolved once; the services come up in lifespan
    install_error_handlers(app)
    console.install(app)  # /console: pages for people, refusals answered as pages
    for router in (health.router, calls.router, traces.router, sql.router, parquet.router, ingest_metrics.router,
                   search.router, ingest.router):
        app.include_router(router, responses=PLATFORM_ERRORS)
    for prefix in PREFIXES:  # seed 004 names the same routes under both prefixes
        for router in (predictions.router, schedules.router, performance.router, sleep_admin.router, export.router):
            app.include_router(router, prefix=prefix, responses=COD_ERRORS)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_message_bytes)  # inside the recorder: 413s are rows
    app.add_middleware(CallRecorderMiddleware, buffer=buffer, settings=settings)
    if settings.cors_origins:  # outermost: a preflight is answered before anything else looks at it
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=True,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"], allow_headers=CORS_HEADERS,
                           expose_headers=["X-Trace-ID", "Retry-After"], max_age=600)
    return app
