"""calls.normalized -> sys_api_call_histories: an append, with every duplicate dropped before it.

The table has no key (docs/decisions.md "Calls are stored without a key"): a key's index cost 3 us a row
and 2.5x the file. What a key used to catch comes in two kinds, and each is dropped where it is cheap:
  * the pipeline's own replays (a worker re-sending a batch after a failed send or a rebalance): every
    calls.normalized message names the calls.raw range it accounts for, and `StoredRanges` remembers, per
    calls.raw partition, the ranges already stored. Rows of a stored range are dropped, whatever their age
    or order: exact, one range per partition in the steady state, updated in the same transaction as the rows.
  * the same event sent twice by its producer (a gateway retrying, a resent batch): only ids the producer
    supplied can say so, and those are checked per tenant against `calls_recent_ids`, the ids stored in the
    last `calls_dedupe_window_s` (24 h by default). A resend later than that is stored again.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from aiokafka.structs import ConsumerRecord

from pipeline.broker.topics import CALLS_NORMALIZED
from pipeline.calls.arrow import CALLS_SCHEMA, SEQ_BITS, TRANSPORT_SCHEMA, Source, ipc_to_table
from pipeline.calls.routes import route_templates
from pipeline.settings import Settings
from pipeline.storage.materializer import Built, Context, Sink, Write

TABLE = "sys_api_call_histories"
MAX_RANGES = 256  # per partition; past it the two lowest merge (a gap that old is not coming any more)
MAX_SPAN_OFFSETS = 100_000  # a worker batch covers at most 5,000 calls.raw offsets of a partition
RANGES_SCHEMA = pa.schema([("cluster_id", pa.string()), ("partition", pa.int32()),
                           ("ranges", pa.list_(pa.struct([("lo", pa.int64()), ("hi", pa.int64())])))])
RECENT_SCHEMA = pa.schema([("tenant_id", pa.string()), ("api_call_history_id", pa.string()),
                           ("seen_at", pa.timestamp("us", tz="UTC"))])
STORED = (*CALLS_SCHEMA.names, "route")  # the seed's columns, then the route derived from the path
_COLUMNS = ", ".join(f'"{n}"' for n in STORED)
# Rows with a derived id go in as they are; rows whose id the producer supplied only if that id is not among
# the tenant's recent ones, and once per batch (the first by source position).
_INSERT_CHECKED = f"""
    INSERT INTO {TABLE} BY NAME
    SELECT {_COLUMNS} FROM _batch WHERE NOT id_supplied
    UNION ALL
    SELECT {_COLUMNS} FROM (
        SELECT * FROM _batch b
        WHERE id_supplied AND NOT EXISTS (
            SELECT 1 FROM calls_recent_ids r
            WHERE r.tenant_id = b.tenant_id AND r.api_call_history_id = b.api_call_history_id)
        QUALIFY row_number() OVER (PARTITION BY tenant_id, api_call_history_id ORDER BY source_seq) = 1)
"""


_UPDATE_RANGES = """
    UPDATE calls_source_ranges SET ranges = b.ranges FROM _batch b
    WHERE calls_source_ranges.cluster_id = b.cluster_id AND calls_source_ranges."partition" = b."partition"
"""


class StoredRanges:
    """Per calls.raw partition, the source_seq ranges already stored: sorted, disjoint, adjacent ones merged."""

    def __init__(self, ranges: dict[int, list[tuple[int, int]]] | None = None) -> None:
        self.ranges = {p: list(r) for p, r in (ranges or {}).items()}

    def copy(self) -> StoredRanges:
        return StoredRanges(self.ranges)

    def covers(self, source: Source) -> bool:
        ranges = self.ranges.get(source.partition, ())
        i = bisect.bisect_right(ranges, (source.lo, float("inf"))) - 1
        return i >= 0 and ranges[i][1] >= source.hi

    def stored(self, partition: int, seqs: np.ndarray) -> np.ndarray:
        """A mask of the seqs that fall in a stored range."""
        ranges = self.ranges.get(partition)
        if not ranges:
            return np.zeros(len(seqs), dtype=bool)
        lo = np.fromiter((r[0] for r in ranges), dtype=np.int64, count=len(ranges))
        hi = np.fromiter((r[1] for r in ranges), dtype=np.int64, count=len(ranges))
        i = np.searchsorted(lo, seqs, side="right") - 1
        return (i >= 0) & (seqs <= hi[np.maximum(i, 0)])

    def add(self, source: Source) -> None:
        ranges = self.ranges.setdefault(source.partition, [])
        lo, hi = source.lo, source.hi
        kept = []
        for a, b in ranges:
            if b + 1 < lo or a > hi + 1:
                kept.append((a, b))
            else:  # overlapping or adjacent: one range
                lo, hi = min(lo, a), max(hi, b)
        bisect.insort(kept, (lo, hi))
        while len(kept) > MAX_RANGES:
            (a, _), (_, b) = kept[0], kept[1]
            kept[:2] = [(a, b)]
        self.ranges[source.partition] = kept

    def rows(self, cluster_id: str, partitions: set[int]) -> pa.Table:
        return pa.Table.from_pylist([{"cluster_id": cluster_id, "partition": p,
                                      "ranges": [{"lo": a, "hi": b} for a, b in self.ranges.get(p, ())]}
                                     for p in sorted(partitions)], schema=RANGES_SCHEMA)


class CallsSink:
    """Builds the calls write: what is new of each message, and the dedupe state that goes with it."""

    def __init__(self, settings: Settings) -> None:
        self.window = timedelta(seconds=settings.calls_dedupe_window_s)
        self.ranges = StoredRanges()
        self.pruned_at: datetime | None = None

    def start(self, cur: duckdb.DuckDBPyConnection, ctx: Context) -> None:
        rows = cur.execute('SELECT "partition", ranges FROM calls_source_ranges WHERE cluster_id = ?',
                           [ctx.cluster_id]).fetchall()
        self.ranges = StoredRanges({p: [(r["lo"], r["hi"]) for r in ranges] for p, ranges in rows})

    def build(self, msgs: Sequence[ConsumerRecord], ctx: Context) -> Built:
        ranges = self.ranges.copy()
        tables, rejected, touched, duplicates = [], [], set(), 0
        for m in msgs:
            try:
                table = ipc_to_table(m.value)
                source = _source(m)
            except (pa.ArrowInvalid, TypeError, ValueError) as exc:
                rejected.append((m, f"not an Arrow batch of call records: {exc}"))
                continue
            if source is None or not table.schema.equals(TRANSPORT_SCHEMA):
                tables.append(_checked_by_key(table))  # a message from before source ranges existed
                continue
            seqs = table.column("source_seq").to_numpy(zero_copy_only=False)
            if (why := _inconsistent(source, seqs)) is not None:
                rejected.append((m, f"calls.normalized message with a bad source range: {why}"))
                continue
            if ranges.covers(source):
                duplicates += table.num_rows
                continue
            old = ranges.stored(source.partition, seqs)
            if old.any():
                duplicates += int(old.sum())
                table = table.filter(pa.array(~old))
            ranges.add(source)
            touched.add(source.partition)
            tables.append(table)
        batch = _tenant_never_null(pa.concat_tables(tables)) if tables else TRANSPORT_SCHEMA.empty_table()
        batch = batch.append_column("route", route_templates(batch.column("path")))
        now = datetime.now(UTC)
        built = Built(None, rejected, duplicates=duplicates)
        if touched:
            known = touched & set(self.ranges.ranges)
            if known:
                built.writes.append(Write("calls_source_ranges", ranges.rows(ctx.cluster_id, known),
                                          sql=_UPDATE_RANGES))
            if touched - known:
                built.writes.append(Write("calls_source_ranges", ranges.rows(ctx.cluster_id, touched - known),
                                          conflict=None))
            built.after_commit = lambda: setattr(self, "ranges", ranges)
        supplied = batch.column("id_supplied")
        if not pc.any(supplied).as_py():
            built.table = batch.select(STORED)
            return built
        ids = batch.filter(supplied).select(["tenant_id", "api_call_history_id"])
        ids = ids.append_column("seen_at", pa.array([now] * ids.num_rows, RECENT_SCHEMA.field("seen_at").type))
        built.writes[:0] = [Write(TABLE, batch, sql=_INSERT_CHECKED, dedupes=True),
                            Write("calls_recent_ids", ids, "IGNORE")]
        if self.pruned_at is None or now - self.pruned_at > self.window / 24:
            cutoff = (now - self.window).isoformat()
            built.statements.append(f"DELETE FROM calls_recent_ids WHERE seen_at < TIMESTAMPTZ '{cutoff}'")
            built.after_commit = _then(built.after_commit, lambda: setattr(self, "pruned_at", now))
        return built


def _then(first: Callable[[], None] | None, second: Callable[[], None]) -> Callable[[], None]:
    """Both after-commit steps, in order."""
    if first is None:
        return second

    def both() -> None:
        first()
        second()

    return both


def _inconsistent(source: Source, seqs: np.ndarray) -> str | None:
    """Why a message's range cannot be what a worker sent (its rows outside it, out of order, or a range
    wider than any worker batch), or None. Such a range is never recorded: it could hide events to come."""
    if (source.hi >> SEQ_BITS) - (source.lo >> SEQ_BITS) >= MAX_SPAN_OFFSETS:
        return f"it spans more than {MAX_SPAN_OFFSETS:,} offsets"
    if len(seqs) and (seqs.min() < source.lo or seqs.max() > source.hi):
        return "rows outside it"
    if len(seqs) > 1 and not (seqs[1:] > seqs[:-1]).all():
        return "rows not in source order"
    return None


def _source(m: ConsumerRecord) -> Source | None:
    value = next((v for k, v in (m.headers or ()) if k == "source"), None)
    return None if value is None else Source.parse(value)


def _checked_by_key(table: pa.Table) -> pa.Table:
    """A plain CALLS_SCHEMA table as transport, every id checked by key (nothing says where it came from)."""
    if table.schema.equals(TRANSPORT_SCHEMA):
        table = table.select(CALLS_SCHEMA.names)
    n = table.num_rows
    return (table.append_column("source_seq", pa.nulls(n, pa.int64()))
            .append_column("id_supplied", pa.array(np.ones(n, dtype=bool))))


def _tenant_never_null(table: pa.Table) -> pa.Table:
    """An event without a tenant is stored under '' (what the ids window and every tenant filter compare)."""
    i = table.schema.get_field_index("tenant_id")
    tenants = table.column(i)
    if not tenants.null_count:
        return table
    return table.set_column(i, table.schema.field(i), pc.fill_null(tenants, ""))


def calls_sink(settings: Settings) -> Sink:
    sink = CallsSink(settings)
    return Sink(settings.topic(CALLS_NORMALIZED), TABLE, sink.build, conflict=None, start=sink.start)
