"""The same job as a quix-streams 3.28 app: calls.raw -> validate + normalize -> DuckDB (BatchingSink).

Per event, as quix-streams processes: JSON deserialisation by quix, `normalize_event` from the pipeline (the
same validation and normalization rules), dead letters branched to the DLQ topic, records to a BatchingSink
that derives missing ids from (partition, offset), builds one Arrow table per checkpoint batch and writes it
with one `INSERT OR IGNORE` into the same keyed table the pipeline uses. Offsets are committed by quix after
the sink has flushed (at-least-once), every `--commit-interval` seconds.

Prints `READY` once it owns partitions and `ROWS <total> <unix time>` after every sink write.
Run by bench/calls.py: python bench/baselines/quix_app.py BOOTSTRAP TOPIC DLQ_TOPIC DB_PATH CLUSTER GROUP
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from functools import partial

import duckdb
import pyarrow as pa
from quixstreams import Application
from quixstreams.sinks import BatchingSink, SinkBatch

from bench.baselines.keyed import DUCKDB_CONFIG, KEYED_DDL
from pipeline.calls.arrow import CALLS_SCHEMA
from pipeline.calls.normalize import Invalid, normalize_event
from pipeline.ids import derived_id


class DuckDBCallsSink(BatchingSink):
    def __init__(self, db: str, make_id) -> None:
        super().__init__()
        self.con = duckdb.connect(db, config=DUCKDB_CONFIG)
        self.con.execute(KEYED_DDL)
        self.make_id = make_id
        self.total = 0
        self.lock = threading.Lock()

    def setup(self) -> None:  # BaseSink hook: nothing to connect to
        return None

    def write(self, batch: SinkBatch) -> None:
        part = batch.partition
        records = []
        for item in batch:
            rec = item.value
            if rec["api_call_history_id"] is None:
                rec["api_call_history_id"] = self.make_id(part, item.offset, None)
            records.append(rec)
        table = pa.Table.from_pylist(records, schema=CALLS_SCHEMA)
        with self.lock:
            cur = self.con.cursor()
            cur.begin()
            cur.register("_batch", table)
            cur.execute("INSERT OR IGNORE INTO sys_api_call_histories BY NAME SELECT * FROM _batch")
            cur.unregister("_batch")
            cur.commit()
            self.total += table.num_rows
            print(f"ROWS {self.total} {time.time():.6f}", flush=True)


def normalize(value, key, timestamp, headers):
    try:
        return normalize_event(value, timestamp)
    except Invalid as exc:
        return {"_dead": str(exc), "value": value}


def main() -> None:
    ap = argparse.ArgumentParser()
    for a in ("bootstrap", "topic", "dlq", "db", "cluster", "group"):
        ap.add_argument(a)
    ap.add_argument("--commit-interval", type=float, default=1.0)
    args = ap.parse_args()

    def on_assign(*_a, **_k) -> None:
        print("READY", flush=True)

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        use_changelog_topics=False,
        auto_create_topics=False,
        loglevel=logging.WARNING,
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
                               "fetch.max.bytes": 16 << 20, "max.partition.fetch.bytes": 4 << 20},
        producer_extra_config={"linger.ms": 5},
    )
    raw = app.topic(args.topic, value_deserializer="json")
    dlq = app.topic(args.dlq, value_serializer="json")
    sink = DuckDBCallsSink(args.db, partial(derived_id, args.cluster, args.topic))
    sdf = app.dataframe(raw).apply(normalize, metadata=True)
    sdf[sdf.apply(lambda v: "_dead" in v)].to_topic(dlq)
    sdf = sdf.filter(lambda v: "_dead" not in v)
    sdf.sink(sink)
    _run(app, on_assign)


def _run(app: Application, on_assign) -> None:
    """app.run(), announcing READY on the first partition assignment (quix has no public hook for it)."""
    original = app._on_assign  # noqa: SLF001

    def hooked(*a, **k):
        result = original(*a, **k)
        on_assign()
        return result

    app._on_assign = hooked  # noqa: SLF001
    app.run()


if __name__ == "__main__":
    main()
