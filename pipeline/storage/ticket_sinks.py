"""`tickets.normalized` -> the ticket tables: newest `updated_at` wins, equal versions counted as duplicates;
`tickets.vectors` -> `ticket_vectors`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from aiokafka.structs import ConsumerRecord

from pipeline.search.vectors import decode_vector
from pipeline.storage.materializer import Built, Context, Write
from pipeline.storage.ticket_tables import MODELS, UPSERT_VECTORS, columns, upsert_sql
from pipeline.tickets.dedupe import completes, latest_per_key

DUPLICATES = ("INSERT INTO ingest_duplicates SELECT b.tenant, '{table}', count(*) FROM _batch b JOIN {table} t "
              "ON t.key = b.key AND t.updated_at >= b.updated_at {completes} GROUP BY b.tenant "
              "ON CONFLICT (tenant, table_name) DO UPDATE SET duplicates = ingest_duplicates.duplicates + "
              "excluded.duplicates")
# An attachment's processed copy (content fetched or skipped with a reason) completing its stored metadata-only
# row is an enrichment, not a duplicate (dedupe.completes).
COMPLETES = ("AND NOT (t.updated_at = b.updated_at AND t.content_sha256 IS NULL AND t.content_skipped IS NULL "
             "AND (b.content_sha256 IS NOT NULL OR b.content_skipped IS NOT NULL))")


def _arrow(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as they came over JSON -> Arrow typed as the table (timestamps parsed, JSON columns as text)."""
    cols = columns(MODELS[table])
    json_cols = [c for c, kind in cols.items() if kind == "JSON"]
    time_cols = [c for c, kind in cols.items() if kind == "TIMESTAMPTZ"]
    for r in rows:
        for c in json_cols:
            r[c] = orjson.dumps(r.get(c)).decode()
        for c in time_cols:
            if isinstance(r.get(c), str):
                r[c] = datetime.fromisoformat(r[c])
    return pa.Table.from_pylist(rows)


def _marks(marks: list[Any], stage: str) -> list[Write]:
    """Job marks (pipeline/ingest/marks.py) reached `stage`: written with the rows that came before them."""
    rows = [{"job_id": str(mk["job_id"]), "tenant": str(mk["tenant"]), "stage": stage, "marked_at": datetime.now(UTC)}
            for mk in marks if isinstance(mk, dict) and "job_id" in mk and "tenant" in mk]
    return [Write("ingest_marks", pa.Table.from_pylist(rows))] if rows else []


def build_tickets(msgs: Sequence[ConsumerRecord], ctx: Context) -> Built:
    batches: dict[str, list[dict[str, Any]]] = {t: [] for t in MODELS}
    rejected, marks = [], []
    for m in msgs:
        try:
            doc = orjson.loads(m.value)
            for table, rows in doc["tables"].items():
                batches[table] += rows
            marks += doc.get("marks", [])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            rejected.append((m, f"not a normalized tickets batch: {exc}"))
    writes = []
    for table, rows in batches.items():
        if not rows:
            continue
        kept = latest_per_key(rows)
        batch = _arrow(table, kept)
        # Counted before the upsert: a stored version as new as the incoming one makes it a duplicate.
        completes = COMPLETES if table == "attachments" else ""
        writes += [Write("ingest_duplicates", batch, sql=DUPLICATES.format(table=table, completes=completes)),
                   Write(table, batch, sql=upsert_sql(table))]
        within = _within_batch(table, rows, kept)
        if within.num_rows:
            writes.append(Write("ingest_duplicates", within, sql=WITHIN_BATCH))
    return Built(None, rejected, writes + _marks(marks, "stored"))


WITHIN_BATCH = ("INSERT INTO ingest_duplicates SELECT tenant, table_name, duplicates FROM _batch ON CONFLICT "
                "(tenant, table_name) DO UPDATE SET duplicates = ingest_duplicates.duplicates + excluded.duplicates")


def _within_batch(table: str, rows: list[dict[str, Any]], kept: list[dict[str, Any]]) -> pa.Table:
    """Copies of one version inside a single batch (a replayed message next to its original); a ticket's
    attachment metadata next to the processed copy of the same file is not one."""
    best = {r["key"]: r for r in kept}
    kept_ids = {id(r) for r in kept}
    counts: dict[str, int] = {}
    for r in rows:
        if id(r) not in kept_ids and not completes(best[r["key"]], r):
            counts[r["tenant"]] = counts.get(r["tenant"], 0) + 1
    dupes = counts
    return pa.table({"tenant": list(dupes), "table_name": [table] * len(dupes), "duplicates": list(dupes.values())})


def build_vectors(msgs: Sequence[ConsumerRecord], ctx: Context) -> Built:
    """`tickets.vectors` -> `ticket_vectors`: the last vector of each object in the batch, vectors decoded."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    rejected, marks = [], []
    for m in msgs:
        try:
            doc = orjson.loads(m.value)
            rows = [_vector_row(r) for r in doc["vectors"]]
            marks += doc.get("marks", [])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            rejected.append((m, f"not a vectors batch: {exc}"))
            continue
        for row in rows:
            old = latest.get((row["tenant"], row["key"]))
            if old is None or old["updated_at"] <= row["updated_at"]:
                latest[(row["tenant"], row["key"])] = row
    if not latest:
        return Built(None, rejected, _marks(marks, "embedded"))
    rows = list(latest.values())
    vectors = [r.pop("vector") for r in rows]
    offsets = np.concatenate([[0], np.cumsum([len(v) for v in vectors])]).astype(np.int32)
    batch = pa.Table.from_pylist(rows).append_column(
        "vector", pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(vectors), pa.float32())))
    return Built(None, rejected, [Write("ticket_vectors", batch, sql=UPSERT_VECTORS), *_marks(marks, "embedded")])


def _vector_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"tenant": str(r["tenant"]), "key": str(r["key"]), "kind": str(r["kind"]), "model": str(r["model"]),
            "text_hash": str(r["text_hash"]), "vector": decode_vector(r["vector"]),
            "updated_at": datetime.fromisoformat(r["updated_at"]), "embedded_at": datetime.fromisoformat(
                r["embedded_at"])}
