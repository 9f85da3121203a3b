"""Parquet exports as the api runs them (it holds the DuckDB file): on request (`POST /v1/parquet-exports`,
`streamdesk export`) and, with `parquet_export_interval_s`, periodically. One run at a time: a request that
arrives while a run is going joins it and gets its report, rather than queueing a run of its own (callers in a
row each waited for every run before theirs: the fuzzer's concurrent POSTs timed out at 20 s in CI)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import structlog

from api.background import BackgroundTask, every
from pipeline.settings import Settings
from pipeline.storage.parquet_export import export_parquet
from pipeline.storage.store import Store

log = structlog.get_logger(__name__)


class ParquetExports:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._running: asyncio.Future[dict[str, dict[str, Any]]] | None = None
        self._task = BackgroundTask("parquet_export")

    async def run_once(self) -> dict[str, dict[str, Any]]:
        """A run's report: the one in progress if there is one, else a new run's."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._run())
        return await asyncio.shield(self._running)  # a caller that gives up does not stop the run for the others

    async def _run(self) -> dict[str, dict[str, Any]]:
        report = await self.store.run(export_parquet, self.settings.parquet_path)
        out = {table: asdict(r) for table, r in report.items()}
        if any(r["written"] or r["removed"] for r in out.values()):
            log.info("parquet_exported", directory=str(self.settings.parquet_path),
                     **{t: f"{r['written']}+/{r['removed']}-" for t, r in out.items() if r["written"] or r["removed"]})
        return out

    def start(self) -> None:
        if self.settings.parquet_export_interval_s > 0:  # a run stopped half way is finished by the next one
            self._task.start(every(self.settings.parquet_export_interval_s, self.run_once, "parquet_export",
                                   first_now=False))

    async def stop(self) -> None:
        await self._task.stop()
