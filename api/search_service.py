"""Vectors and the in-memory hybrid index for `/search`, kept in step with `integrated_objects`.

Vectors live in DuckDB (`ticket_vectors`, keyed by object and text hash) so a restart reloads instead of
re-embedding; the index (BM25 + numpy, per tenant) is rebuilt from them at start-up. New or changed objects
are embedded by a background loop every few seconds; `POST /ingest/sync-summaries` does the same on demand,
or recomputes everything (`force_rebuild`).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import structlog
from starlette.concurrency import run_in_threadpool

from api.background import BackgroundTask
from pipeline.search import Doc, Embedder, SearchIndex, embedder_for
from pipeline.settings import Settings

log = structlog.get_logger(__name__)
EMBED_CHARS = 2000  # what the model sees of an object: title, summary, then the text (MiniLM reads ~256 tokens)
BATCH = 64
PENDING = """
    SELECT o.tenant, o.key, o.object_type, o.title, coalesce(o.summary, ''), o.text, o.updated_at
    FROM integrated_objects o LEFT JOIN ticket_vectors v ON v.tenant = o.tenant AND v.key = o.key
    WHERE ({where}) AND (v.key IS NULL OR v.updated_at < o.updated_at OR v.model <> ?)"""


def embed_text(title: str, summary: str, text: str) -> str:
    return "\n".join(p for p in (title, summary, text) if p)[:EMBED_CHARS]


class SearchService:
    def __init__(self, settings: Settings, db: duckdb.DuckDBPyConnection) -> None:
        self.settings, self.db = settings, db
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # the background loop and sync-summaries never embed at once
        self.index: SearchIndex | None = None
        self._task = BackgroundTask("search-sync")

    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = embedder_for(self.settings.embeddings_url, cache_dir=self.settings.data_dir / "models")
            return self._embedder

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self.db.cursor()

    def load(self) -> int:
        """The index from stored vectors (start-up): no embedding, just reading."""
        cur = self._cursor()
        rows = cur.execute("SELECT o.tenant, o.key, o.object_type, o.title, o.text, o.updated_at, v.vector "
                           "FROM integrated_objects o JOIN ticket_vectors v ON v.tenant = o.tenant AND "
                           "v.key = o.key").fetchall()
        if not rows:
            return 0
        self.index = self.index or SearchIndex(len(rows[0][6]))
        by_tenant: dict[str, list[Doc]] = {}
        for tenant, key, kind, title, text, updated, vec in rows:
            by_tenant.setdefault(tenant, []).append(Doc(key, kind, title, text, np.asarray(vec, np.float32),
                                                        updated))
        for tenant, docs in by_tenant.items():
            self.index.rebuild(tenant, docs)
        return len(rows)

    def sync(self, tenant: str | None, force: bool = False) -> dict[str, Any]:
        """Embed what is new or changed (everything when `force`) for one tenant (None: all); update the index."""
        with self._sync_lock:
            return self._sync(tenant, force)

    def _sync(self, tenant: str | None, force: bool) -> dict[str, Any]:
        started = time.perf_counter()
        embedder = self.embedder()
        cur = self._cursor()
        if force and tenant is not None:
            cur.execute("DELETE FROM ticket_vectors WHERE tenant = ?", [tenant])
        where, params = ("o.tenant = ?", [tenant]) if tenant is not None else ("TRUE", [])
        rows = cur.execute(PENDING.format(where=where), [*params, embedder.name]).fetchall()
        for start in range(0, len(rows), BATCH):
            self._embed_batch(cur, embedder, rows[start:start + BATCH])
        total = cur.execute(f"SELECT count(*) FROM integrated_objects o WHERE {where}", params).fetchone()[0]
        return {"objects": total, "embedded": len(rows), "reused": total - len(rows), "model": embedder.name,
                "dimensions": embedder.dim, "duration_seconds": round(time.perf_counter() - started, 2)}

    def _embed_batch(self, cur: duckdb.DuckDBPyConnection, embedder: Embedder, rows: list[tuple]) -> None:
        texts = [embed_text(r[3], r[4], r[5]) for r in rows]
        vectors = embedder.embed(texts)
        batch = pa.table({
            "tenant": [r[0] for r in rows], "key": [r[1] for r in rows], "kind": [r[2] for r in rows],
            "model": [embedder.name] * len(rows), "text_hash": [hashlib.sha256(t.encode()).hexdigest() for t in texts],
            "vector": pa.array(list(vectors), pa.list_(pa.float32())), "updated_at": [r[6] for r in rows]})
        cur.register("_vectors", batch)
        try:
            cur.execute("INSERT OR REPLACE INTO ticket_vectors BY NAME SELECT * FROM _vectors")
        finally:
            cur.unregister("_vectors")
        self.index = self.index or SearchIndex(embedder.dim)
        for tenant in {r[0] for r in rows}:
            docs = [Doc(r[1], r[2], r[3], r[5], v, r[6]) for r, v in zip(rows, vectors, strict=True) if r[0] == tenant]
            self.index.add(tenant, docs)

    def start(self) -> None:
        self._task.start(self._run())

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        loaded = await run_in_threadpool(self.load)
        log.info("search_index_loaded", documents=loaded)
        while True:
            await asyncio.sleep(self.settings.search_sync_s)
            try:
                done = await run_in_threadpool(self.sync, None)
                if done["embedded"]:
                    log.info("search_synced", **done)
            except Exception:  # noqa: BLE001 - search catching up must never take the api down
                log.exception("search_sync_failed")
