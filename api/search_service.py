"""The in-memory hybrid index behind `/search`, kept in step with the vectors the worker stores.

The worker's embedding agent (pipeline/tickets/embed_agents.py) embeds integrated objects as they stream by;
the materializer upserts the vectors into `ticket_vectors`, each write taking the next `seq`. This service
loads the index (BM25 + numpy, per tenant) from DuckDB at start-up, then every `search_sync_s` indexes what
is past the last seq it saw, joined to the object's current title and text. The api embeds only queries.

`POST /ingest/sync-summaries` asks the worker for what is missing (objects with no vector, an older one, or
one from another model; every object with `force_rebuild`) on `tickets.embed_requests`, and waits until the
vectors are stored and indexed, or answers 503 with the worker's error when it dead-letters a request (its
embedder failed).
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import pyarrow.compute as pc
import structlog

from api.background import BackgroundTask
from api.publish import Publisher
from api.refusals import Unavailable
from pipeline.broker.topics import EMBED_REQUESTS
from pipeline.search import Doc, Embedder, SearchIndex, embedder_for
from pipeline.search.vectors import embed_text
from pipeline.settings import Settings
from pipeline.storage.queries import search as sq
from pipeline.storage.store import Store
from schemas.search import EmbedObject, EmbedRequest

log = structlog.get_logger(__name__)
REQUEST_OBJECTS = 64  # objects per `tickets.embed_requests` message
ORPHAN_WAIT = timedelta(seconds=60)  # a vector whose object is not stored yet is retried this long


class SearchService:
    def __init__(self, settings: Settings, store: Store, publisher: Publisher | None = None) -> None:
        self.settings, self.store, self.publisher = settings, store, publisher
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()  # one refresh at a time: the loop and sync-summaries
        self.index: SearchIndex | None = None
        self.seq = 0  # the last ticket_vectors seq indexed
        self._task = BackgroundTask("search-index")

    def embedder(self) -> Embedder:
        """The model queries are embedded with (the worker's: both read the same settings)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = embedder_for(self.settings.embeddings_url, cache_dir=self.settings.models_path)
            return self._embedder

    def refresh(self) -> int:
        """Index the vectors stored since the last call (all of them the first time); returns how many."""
        with self._index_lock:
            table = self.store.call(sq.vectors_since, self.seq)
            if not table.num_rows:
                return 0
            seqs, titles, embedded = (table.column(c).to_pylist() for c in ("seq", "title", "embedded_at"))
            now, hold, dim = datetime.now(UTC), None, None
            for seq, title, at in zip(seqs, titles, embedded, strict=True):
                if title is None and at is not None and now - at < ORPHAN_WAIT:
                    hold = seq - 1  # the vector came before its object: wait for it, for a while
                    break
            keep = pc.is_valid(table.column("title"))
            if hold is not None:
                keep = pc.and_(keep, pc.less_equal(table.column("seq"), hold))
            table = table.filter(keep)
            if table.num_rows:
                flat = table.column("vector").combine_chunks()
                dim = len(flat[0])
                vectors = flat.flatten().to_numpy().reshape(table.num_rows, dim)
                if self.index is None:
                    self.index = SearchIndex(dim)
                by_tenant: dict[str, list[Doc]] = {}
                cols = zip(*(table.column(c).to_pylist() for c in ("tenant", "key", "kind", "title", "text",
                                                                     "updated_at")), strict=True)
                for (tenant, key, kind, title, text, updated), vector in zip(cols, vectors, strict=True):
                    by_tenant.setdefault(tenant, []).append(Doc(key, kind, title, text, vector, updated))
                for tenant, docs in by_tenant.items():
                    self.index.add(tenant, docs, replace_equal=True)
            self.seq = seqs[-1] if hold is None else hold
            return table.num_rows

    def forget(self, tenant: str) -> None:
        """A purged company: its documents leave the index at once (their rows are gone from DuckDB)."""
        if self.index is not None:
            self.index.drop(tenant)

    async def sync(self, tenant: str, force: bool = False) -> dict[str, Any]:
        """Have the worker embed the company's missing or stale vectors (all with `force`); wait until indexed."""
        started = time.perf_counter()
        model = self.embedder().name
        rows, total, since = await self.store.run(sq.pending_objects, tenant, force, model)
        pending = [EmbedObject(tenant=r[0], key=r[1], object_type=r[2], updated_at=r[3].isoformat(),
                               embed_text=embed_text(r[4], r[5], r[6])) for r in rows]
        sent = await self._request(pending, force)
        deadline = started + self.settings.search_sync_wait_s
        left = len(pending)
        while left and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
            left = len(pending) - await self.store.run(sq.vectors_written_since, tenant, [o.key for o in pending],
                                                         since)
            if left and (error := await self.store.run(sq.dead_lettered, self.settings.topic(EMBED_REQUESTS),
                                                       sent)):
                raise Unavailable(f"the worker could not embed: {error}", retry_after_s=30)
        await anyio.to_thread.run_sync(self.refresh)
        return {"status": "completed" if not left else "in_progress", "objects": total,
                "embedded": len(pending) - left, "pending": left, "reused": total - len(pending), "model": model,
                "dimensions": self.index.dim if self.index else None,
                "duration_seconds": round(time.perf_counter() - started, 2)}

    async def _request(self, objects: list[EmbedObject], force: bool) -> list[tuple[int, int]]:
        """Publish the objects to embed; returns where each request landed (partition, offset)."""
        if not objects:
            return []
        if self.publisher is None:
            raise RuntimeError("this SearchService cannot publish (no publisher)")
        return await self.publisher.send_many(EMBED_REQUESTS, [
            (objects[i].tenant.encode(),
             EmbedRequest(force=force, objects=objects[i:i + REQUEST_OBJECTS]).model_dump_json().encode())
            for i in range(0, len(objects), REQUEST_OBJECTS)])

    def start(self) -> None:
        self._task.start(self._run())

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        started = time.perf_counter()
        loaded = None
        while True:
            try:
                indexed = await anyio.to_thread.run_sync(self.refresh)
            except Exception:  # noqa: BLE001 - search catching up (or its first load) must never stop for good
                log.exception("search_index_failed")
            else:
                if loaded is None:
                    loaded = indexed
                    log.info("search_index_loaded", documents=loaded,
                             seconds=round(time.perf_counter() - started, 2))
                elif indexed:
                    log.info("search_indexed", documents=indexed, seq=self.seq)
            await asyncio.sleep(self.settings.search_sync_s)
