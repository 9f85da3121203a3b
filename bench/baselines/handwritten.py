"""The practical limit: a minimal hand-written calls.raw -> DuckDB app, one hop, one process.

aiokafka `getmany` -> parse the batch at once (Arrow's JSON reader with a fixed schema, or orjson per message)
-> vectorised checks (bad rows to the DLQ) -> redaction of the distinct query strings -> derived ids for rows
without one -> one `INSERT OR IGNORE` per batch into the same keyed table the pipeline uses -> commit offsets.
With `--append` it is the minimal append app: the same table without its key, one plain INSERT per batch,
offsets committed after it (a replay after a crash stores its events twice).
What it leaves out compared with the pipeline: a second hop (calls.normalized), header-derived identity,
IP canonicalisation, pydantic DLQ explanations, metrics. Cheaper derived ids (no hash: the coordinates as text).

Prints `READY` once it owns partitions and `ROWS <total> <unix time>` after every committed batch.
Run by bench/calls.py: python bench/baselines/handwritten.py BOOTSTRAP TOPIC DLQ_TOPIC DB_PATH CLUSTER GROUP
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.baselines.keyed import DUCKDB_CONFIG, KEYED_DDL
from pipeline.calls.arrow import CALLS_SCHEMA
from pipeline.calls.redact import redact_query
from pipeline.storage.schema import DDL

RAW_SCHEMA = pa.schema([f for f in CALLS_SCHEMA if f.name not in ("status_code",)] + [("status_code", pa.int64())])
IDS = ("tenant_id", "user_id")  # text or numbers (seed 003's Long): inferred, then cast to text
PARSE = pj.ParseOptions(explicit_schema=pa.schema([f for f in RAW_SCHEMA if f.name not in IDS]),
                        unexpected_field_behavior="infer")
NAMES = RAW_SCHEMA.names


def _ids_as_text(table: pa.Table) -> pa.Table:
    for name in IDS:
        if name not in table.schema.names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
        elif table.schema.field(name).type != pa.string():
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, pc.cast(table.column(i), pa.string()))  # raises on non-integers
    return table.select(NAMES)


def parse_arrow(values: list[bytes]) -> tuple[pa.Table, list[int]]:
    """The whole batch through Arrow's JSON reader; on any bad message fall back to orjson per message."""
    try:
        data = b"\n".join(values)
        return _ids_as_text(pj.read_json(io.BytesIO(data), parse_options=PARSE,
                                         read_options=pj.ReadOptions(block_size=max(1 << 20, len(data) + 1)))), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return parse_orjson(values)


def parse_orjson(values: list[bytes]) -> tuple[pa.Table, list[int]]:
    """orjson per message into column lists, then one Arrow array per column."""
    cols: dict[str, list] = {n: [] for n in NAMES}
    bad: list[int] = []
    appenders = [(n, cols[n].append) for n in NAMES]
    for i, v in enumerate(values):
        try:
            obj = orjson.loads(v)
        except orjson.JSONDecodeError:
            bad.append(i)
            continue
        if not isinstance(obj, dict):
            bad.append(i)
            continue
        get = obj.get
        for n, append in appenders:
            append(get(n))
        for n in IDS:
            if type(cols[n][-1]) is int:
                cols[n][-1] = str(cols[n][-1])
    try:
        return _to_table(cols), bad
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a wrong type somewhere: find it message by message
        return _parse_one_by_one(values)


def _to_table(cols: dict[str, list]) -> pa.Table:
    arrays = [pc.cast(pa.array(cols[n], pa.string()), pa.timestamp("us", tz="UTC")) if n == "created_at"
              else pa.array(cols[n], RAW_SCHEMA.field(n).type) for n in NAMES]
    return pa.Table.from_arrays(arrays, schema=RAW_SCHEMA)


def _parse_one_by_one(values: list[bytes]) -> tuple[pa.Table, list[int]]:
    good, bad = [], []
    for i, v in enumerate(values):
        try:
            obj = orjson.loads(v)
            good.append(_to_table({n: [obj.get(n)] for n in NAMES}))
        except Exception:  # noqa: BLE001 - anything wrong with this message sends it to the DLQ
            bad.append(i)
    return (pa.concat_tables(good) if good else RAW_SCHEMA.empty_table()), bad


def normalize(raw: pa.Table, partition: int, offsets: pa.Array, ts_us: pa.Array,
              id_prefix: str) -> tuple[pa.Table, pa.Array]:
    """Vectorised checks and the few column rules; returns (good rows in CALLS_SCHEMA, mask of bad rows)."""
    status = raw["status_code"]
    method = raw["method"]
    path = raw["path"]
    ok = pc.and_kleene(pc.is_valid(status), pc.and_(pc.greater_equal(status, 100), pc.less_equal(status, 599)))
    ok = pc.and_(ok, pc.fill_null(pc.utf8_is_alpha(method), False))
    ok = pc.and_(ok, pc.fill_null(pc.starts_with(path, "/"), False))
    for col in ("latency_ms", "request_size_bytes", "response_size_bytes"):
        ok = pc.and_(ok, pc.fill_null(pc.greater_equal(raw[col], 0), True))
    ok = pc.and_(ok, pc.fill_null(pc.less_equal(pc.utf8_length(raw["agent_id"]), 100), True))
    good = raw.filter(ok)
    offs = offsets.filter(ok)
    ts = ts_us.filter(ok)
    # query strings: NULL for none, secrets redacted (distinct values only: they repeat)
    qs = good["query_string"].combine_chunks()
    qs = pc.if_else(pc.equal(qs, ""), pa.scalar(None, pa.string()), qs)
    uniq = pc.unique(qs).drop_null()
    red = pa.array([redact_query(q) for q in uniq.to_pylist()], pa.string())
    qs = pc.take(red, pc.index_in(qs, uniq))
    derived = pc.binary_join_element_wise(id_prefix + str(partition), pc.cast(offs, pa.string()), ":")
    cols = {
        "api_call_history_id": pc.coalesce(good["api_call_history_id"], derived),
        "method": pc.utf8_upper(good["method"]),
        "query_string": qs,
        "status_code": pc.cast(good["status_code"], pa.int32()),
        "created_at": pc.coalesce(good["created_at"], ts),
    }
    arrays = [cols[n] if n in cols else good[n] for n in CALLS_SCHEMA.names]
    return pa.Table.from_arrays(arrays, schema=CALLS_SCHEMA), pc.invert(ok)


async def main() -> None:
    ap = argparse.ArgumentParser()
    for a in ("bootstrap", "topic", "dlq", "db", "cluster", "group"):
        ap.add_argument(a)
    ap.add_argument("--parser", choices=("arrow", "orjson"), default="arrow")
    ap.add_argument("--append", action="store_true", help="no key: plain INSERT into a table without one")
    args = ap.parse_args()
    parse = parse_arrow if args.parser == "arrow" else parse_orjson

    con = duckdb.connect(args.db, config=DUCKDB_CONFIG)
    con.execute(DDL[0] if args.append else KEYED_DDL)
    verb = "INSERT" if args.append else "INSERT OR IGNORE"
    consumer = AIOKafkaConsumer(
        args.topic, bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000, rebalance_timeout_ms=6000,
        max_partition_fetch_bytes=4 << 20, fetch_max_bytes=16 << 20, max_poll_records=20_000)
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=5)
    await producer.start()
    await consumer.start()
    while not consumer.assignment():
        await asyncio.sleep(0.05)
    print("READY", flush=True)
    id_prefix = f"{args.cluster}:{args.topic}:"
    total = 0

    def write(table: pa.Table) -> int:
        cur = con.cursor()
        cur.begin()
        cur.register("_batch", table)
        n = cur.execute(f"{verb} INTO sys_api_call_histories BY NAME SELECT * FROM _batch").fetchone()[0]
        cur.unregister("_batch")
        cur.commit()
        return int(n)

    async def finish(write_task: asyncio.Future, offsets: dict, rows: int) -> None:
        """Offsets are committed only after their rows are in DuckDB (at-least-once)."""
        nonlocal total
        await write_task
        await consumer.commit(offsets)
        total += rows
        print(f"ROWS {total} {time.time():.6f}", flush=True)

    # Pipelined: batch N is inserted (DuckDB releases the GIL) while batch N+1 is fetched and parsed.
    pending = None
    try:
        while True:
            got = await consumer.getmany(timeout_ms=20 if pending else 100, max_records=20_000)
            if not got:
                if pending:
                    await finish(*pending)
                    pending = None
                continue
            tables, dead = [], []
            for tp, msgs in got.items():
                values = [m.value if m.value is not None else b"null" for m in msgs]
                raw, bad_idx = parse(values)
                bad_set = set(bad_idx)
                keep = [m for i, m in enumerate(msgs) if i not in bad_set] if bad_idx else msgs
                dead += [(msgs[i], "not a JSON event object") for i in bad_idx]
                offsets = pa.array([m.offset for m in keep], pa.int64())
                ts = pa.array([m.timestamp * 1000 for m in keep], pa.timestamp("us", tz="UTC"))
                table, bad_mask = normalize(raw, tp.partition, offsets, ts, id_prefix)
                if pc.any(bad_mask).as_py():
                    for i in pc.indices_nonzero(bad_mask).to_pylist():
                        dead.append((keep[i], "failed validation (status/method/path/sizes/agent_id)"))
                tables.append(table)
            for m, reason in dead:
                await producer.send(args.dlq, orjson.dumps({"error": reason, "topic": m.topic, "partition": m.partition,
                                                            "offset": m.offset}))
            batch = pa.concat_tables(tables)
            if pending:
                await finish(*pending)
            pending = (asyncio.ensure_future(asyncio.to_thread(write, batch)),
                       {tp: msgs[-1].offset + 1 for tp, msgs in got.items()}, batch.num_rows)
    finally:
        await consumer.stop()
        await producer.stop()
        con.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
