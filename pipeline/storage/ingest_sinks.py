"""`ingest.progress` -> `ingest_jobs` (the latest state of each job wins, by `seq`) and `ingest_job_logs`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from pipeline.storage.materializer import Built, Context, Write
from schemas.ingest import TERMINAL, JobProgress

STATE = ("status", "current_step", "step_details", "completed_items", "total_items", "items_per_second",
         "statistics", "cursor", "phase", "error", "worker", "seq", "last_activity")
# Only a newer state moves a job, and nothing moves a finished one (a late event from a dead worker, a replay).
JOBS_UPSERT = (
    "INSERT INTO ingest_jobs BY NAME SELECT * FROM _batch "
    "ON CONFLICT (job_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in STATE)
    + ", started_at = coalesce(ingest_jobs.started_at, excluded.started_at)"
    + ", completed_at = coalesce(excluded.completed_at, ingest_jobs.completed_at)"
    + " WHERE coalesce(ingest_jobs.seq, 0) < excluded.seq AND ingest_jobs.status NOT IN ('completed', 'cancelled')"
    + " AND NOT (ingest_jobs.status = 'failed' AND excluded.status <> 'running')"
)
LOG_SCHEMA = pa.schema([("job_id", pa.string()), ("seq", pa.int64()), ("n", pa.int32()),
                        ("timestamp", pa.timestamp("us", tz="UTC")), ("level", pa.string()),
                        ("message", pa.string()), ("details", pa.string())])


def _row(p: JobProgress) -> dict[str, Any]:
    return {"job_id": p.job_id, "tenant": p.tenant, "domain": p.domain, "status": p.status,
            "current_step": p.current_step, "step_details": p.step_details, "completed_items": p.completed_items,
            "total_items": p.total_items, "items_per_second": p.items_per_second,
            "statistics": p.statistics.model_dump_json(), "cursor": orjson.dumps(p.cursor).decode(),
            "phase": p.phase, "error": p.error, "worker": p.worker, "seq": p.seq, "last_activity": p.at,
            "started_at": p.started_at, "completed_at": p.at if p.status in TERMINAL else None}


def build_job_progress(msgs: Sequence[ConsumerRecord], ctx: Context) -> Built:
    latest: dict[str, JobProgress] = {}
    logs, rejected = [], []
    for m in msgs:
        try:
            p = JobProgress.model_validate_json(m.value)
        except ValidationError as exc:
            rejected.append((m, f"not a job progress event: {exc.errors(include_url=False)[:2]}"))
            continue
        if p.job_id not in latest or latest[p.job_id].seq < p.seq:
            latest[p.job_id] = p
        logs += [{"job_id": p.job_id, "seq": p.seq, "n": i, "timestamp": line.timestamp, "level": line.level,
                  "message": line.message, "details": orjson.dumps(line.details).decode()}
                 for i, line in enumerate(p.logs)]
    jobs = pa.Table.from_pylist([_row(p) for p in latest.values()]) if latest else None
    writes = [Write("ingest_job_logs", pa.Table.from_pylist(logs, schema=LOG_SCHEMA),
                    sql="INSERT OR IGNORE INTO ingest_job_logs BY NAME SELECT * FROM _batch")]
    if jobs is not None:
        writes.insert(0, Write("ingest_jobs", jobs, sql=JOBS_UPSERT))
    return Built(None, rejected, writes)
