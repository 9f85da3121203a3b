"""The materializer: one thread that consumes result topics and writes DuckDB in Arrow batches.

Generic by construction: a `Sink` names a topic, a table, how to build an Arrow batch from messages, and
how to write it. Rows and consumed offsets are committed in one DuckDB transaction; on start the consumer
seeks to the stored offsets (keyed by cluster id, so a fresh embedded broker starts from its beginning).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import structlog
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from pipeline.broker.kafka import make_consumer, wait_for_broker
from pipeline.metrics import (
    CONSUMER_LAG,
    DUPLICATES_DROPPED,
    MATERIALIZED_ROWS,
    MATERIALIZER_BATCH,
    MATERIALIZER_SECONDS,
)
from pipeline.settings import Settings
from pipeline.storage.db import retry_conflicts, rollback
from pipeline.storage.dead_letters import rejected_rows
from pipeline.storage.freshness import Freshness

log = structlog.get_logger(__name__)
T = TypeVar("T")
RACE_ATTEMPTS = 50  # tries of a write that keeps losing a race with a route's update (Materializer._write)
# The data is at fault (types, constraints, a statement that cannot bind it), not the file or the machine.
DATA_ERRORS = (duckdb.DataError, duckdb.IntegrityError, duckdb.ProgrammingError, duckdb.ConversionException,
               duckdb.InvalidInputException)


@dataclass(frozen=True, slots=True)
class Context:
    cluster_id: str


@dataclass(frozen=True, slots=True)
class Write:
    """A further batch for another table (one topic may feed several), optionally with its own INSERT.

    `sql` reads the batch as `_batch`, e.g. an `ON CONFLICT ... DO UPDATE` or a filter on erased users.
    """

    table: str
    batch: pa.Table
    conflict: str | None = "IGNORE"
    sql: str | None = None
    dedupes: bool = False  # the rows `sql` leaves out are duplicates (counted as such)

    @property
    def drops_duplicates(self) -> bool:
        return self.dedupes or (self.sql is None and self.conflict == "IGNORE")


@dataclass(slots=True)
class Built:
    table: pa.Table | None
    rejected: list[tuple[ConsumerRecord, str]] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)  # run in the transaction before the writes
    duplicates: int = 0  # rows the build itself dropped as already stored
    after_commit: Callable[[], None] | None = None  # the sink's own state moves on only with the transaction


@dataclass(frozen=True, slots=True)
class Sink:
    """How one result topic becomes rows of one table."""

    topic: str
    table: str
    build: Callable[[Sequence[ConsumerRecord], Context], Built]
    # IGNORE: keyed, first write wins (replays add nothing); REPLACE: latest wins; None: append (the build
    # drops what is already stored)
    conflict: str | None = "IGNORE"
    start: Callable[[duckdb.DuckDBPyConnection, Context], None] | None = None  # load state, before any build


def write_arrow(cur: duckdb.DuckDBPyConnection, table: str, batch: pa.Table, conflict: str | None = "IGNORE",
                sql: str | None = None) -> int:
    """One INSERT per batch, by column name (or the given statement over `_batch`); returns rows written.

    `conflict=None` leaves out the ON CONFLICT clause: a key already stored raises duckdb.ConstraintException,
    and a batch without one is cheaper to write (2.8 against 4.7 us a row into 600k keyed rows, measured).
    """
    verb = f"INSERT OR {conflict}" if conflict else "INSERT"
    cur.register("_batch", batch)
    try:
        sql = sql or f"{verb} INTO {table} BY NAME SELECT * FROM _batch"
        return int(cur.execute(sql).fetchone()[0])
    finally:
        with contextlib.suppress(duckdb.TransactionException):  # aborted by the error on its way out
            cur.unregister("_batch")


class Materializer:
    """Runs in its own thread with its own event loop, so DuckDB writes never block the api's loop."""

    keyed_conflicts_s = 30.0
    linger_s = 0.05  # group commit: how long a transaction may wait for messages that are still coming
    batch_bytes = 8 << 20  # ...and how much it gathers at most (about 30,000 call rows)
    linger_from_bytes = 512 << 10  # a fetch this big means a busy stream (5,000 calls/s fetch ~170 KB)

    def __init__(self, settings: Settings, con: duckdb.DuckDBPyConnection, sinks: Sequence[Sink],
                 consumer_name: str = "api") -> None:
        self.settings = settings
        self.con = con
        self.sinks = {s.topic: s for s in sinks}
        self.consumer_name = consumer_name
        self.cluster_id: str | None = None
        self.last_batch_at: float | None = None
        self.rows_written = 0
        self.freshness = Freshness()
        self.caught_up = threading.Event()  # set on every idle poll (a test clears it to wait for the next)
        self.started_caught_up = threading.Event()  # everything on the topics when it started is in DuckDB
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self._keyed_until = 0.0  # monotonic time until which keyed sinks are written with ON CONFLICT
        self._write_retrying = retry_conflicts(self._write_batch, attempts=RACE_ATTEMPTS)  # built once, not a batch

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="materializer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout_s)
            if self._thread.is_alive():  # say where it is stuck: the one clue a hung shutdown leaves
                frame = sys._current_frames().get(self._thread.ident)
                loop = getattr(self, "_loop", None)
                tasks = ["".join(traceback.format_stack(t.get_stack()[-1])[-3:]) for t in asyncio.all_tasks(loop)
                         if t.get_stack()] if loop else []
                log.error("materializer_did_not_stop", seconds=timeout_s, tasks=tasks,
                          stack="".join(traceback.format_stack(frame)[-8:]) if frame else None)

    @property
    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                asyncio.run(self._consume())
            except Exception as exc:  # keep materializing after any broker hiccup; say so loudly
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("materializer_failed_restarting")
                self._stop.wait(2.0)

    async def _consume(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:  # in short waits, so that stop() is heard while the broker is away
            try:
                self.cluster_id = await wait_for_broker(self.settings.bootstrap(), timeout_s=2.0)
                break
            except TimeoutError:
                if self._stop.is_set():
                    return
        consumer = make_consumer(self.settings, group=None, max_poll_records=20_000)
        await consumer.start()
        try:
            started = await self._or_stop(self._start_reading(consumer), 30.0)  # a broker gone now: start over
            if started is None:
                return
            tps, ends = started
            while not self._stop.is_set():
                got = await consumer.getmany(timeout_ms=100, max_records=20_000)
                if got:
                    got = await self._gather_more(consumer, got)
                    await asyncio.to_thread(self._write, got)
                    self._update_lag(consumer, got)
                else:
                    self.caught_up.set()
                if not self.started_caught_up.is_set() and (not got or await _reached(consumer, ends)):
                    self.started_caught_up.set()
        finally:
            await consumer.stop()

    async def _start_reading(self, consumer: Any) -> tuple[list[TopicPartition], dict[TopicPartition, int]]:
        """Assign every sink's partitions, from the stored offsets (else the beginning); the end offsets now."""
        await consumer.topics()
        tps = [TopicPartition(t, p) for t in self.sinks for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        stored = self._stored_offsets()
        for tp in tps:
            if tp in stored:
                consumer.seek(tp, stored[tp])
            else:
                await consumer.seek_to_beginning(tp)
        ctx = Context(self.cluster_id or "")
        for sink in self.sinks.values():
            if sink.start is not None:
                cur = self.con.cursor()
                try:
                    sink.start(cur, ctx)
                finally:
                    cur.close()
        log.info("materializer_started", cluster_id=self.cluster_id, partitions=len(tps), resumed=len(stored))
        self.error = None
        return tps, await consumer.end_offsets(tps)

    async def _or_stop(self, work: Awaitable[T], timeout_s: float) -> T | None:
        """`work`, or None as soon as stop() is called (its offset lookups never end while the broker is away,
        and a shutdown must not wait for them); TimeoutError after `timeout_s`."""
        task = asyncio.ensure_future(work)
        deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            while not task.done():
                if self._stop.is_set():
                    return None
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"the broker did not answer within {timeout_s:.0f} s")
                await asyncio.wait({task}, timeout=0.1)
            return task.result()
        finally:
            if not task.done():
                task.cancel()

    async def _gather_more(self, consumer: Any, got: dict[TopicPartition, list[ConsumerRecord]]
                           ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Group commit: while messages keep coming (for at most `linger_s`), add them to this transaction.

        A DuckDB commit has a fixed cost (~4 ms here, with the offsets' upsert); a fetch under load holds
        ~3,000 call rows. Measured with the calls sink: 6.1 us a row at ~3,300 rows a transaction, 3.2 us at
        ~17,000. Only a busy stream waits (a fetch of at least `linger_from_bytes`), at most `linger_s`, and
        stops at `batch_bytes`; a quiet one is written at once, so its freshness pays nothing for this.
        """
        size = _size(got)
        if size < self.linger_from_bytes:
            return got
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger_s
        while size < self.batch_bytes and (left := deadline - loop.time()) > 0:
            more = await consumer.getmany(timeout_ms=max(1, int(left * 1000)), max_records=20_000)
            if not more:
                break
            for tp, msgs in more.items():
                got.setdefault(tp, []).extend(msgs)
            size += _size(more)
        return got

    def _stored_offsets(self) -> dict[TopicPartition, int]:
        rows = self.con.cursor().execute(
            'SELECT topic, "partition", next_offset FROM materializer_offsets WHERE consumer = ? AND cluster_id = ?',
            [self.consumer_name, self.cluster_id],
        ).fetchall()
        return {TopicPartition(t, p): o for t, p, o in rows if t in self.sinks}

    def _write(self, got: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Write a fetch; if the data itself breaks a write, isolate the topic at fault and dead-letter it.

        A batch DuckDB refuses (a type it cannot convert, a constraint) would otherwise be retried forever and
        stall every stream behind it. Its messages go to `dead_letters` whole, with the error, and the
        offsets move on: bad input never stops a stream, and nothing is lost.

        A write that lost a race with a route updating the same row (a job's priority while its progress is
        upserted) rolled back whole and is run again (`retry_conflicts`), rather than restarting the consumer.
        Such a write takes ~13 ms, so a route updating the row every 20 ms takes it from it most times: it tries
        up to `RACE_ATTEMPTS` times (~25 s of backoff in all) before it gives up and the consumer restarts.
        """
        try:
            self._write_retrying(got)
        except DATA_ERRORS as exc:
            log.error("materializer_batch_refused_isolating", error=str(exc).splitlines()[0])
            for topic in {tp.topic for tp in got}:
                part = {tp: msgs for tp, msgs in got.items() if tp.topic == topic}
                try:
                    self._write_batch(part)
                except DATA_ERRORS as inner:
                    self._quarantine(part, f"{type(inner).__name__}: {str(inner).splitlines()[0]}")

    def _quarantine(self, got: dict[TopicPartition, list[ConsumerRecord]], reason: str) -> None:
        msgs = [(m, f"materializer could not store this message: {reason}") for ms in got.values() for m in ms]
        cur = self.con.cursor()
        cur.begin()
        try:
            write_arrow(cur, "dead_letters", rejected_rows(msgs, self.cluster_id or ""))
            write_arrow(cur, "materializer_offsets", self._offsets_batch(got), conflict="REPLACE")
            cur.commit()
        except BaseException:
            rollback(cur)
            raise
        log.error("materializer_dead_lettered", messages=len(msgs), topics=sorted({tp.topic for tp in got}),
                  reason=reason)

    def _write_batch(self, got: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        started = time.perf_counter()
        built, rejected = self._build(got)
        optimistic = time.monotonic() >= self._keyed_until
        try:
            written = self._transaction(got, built, rejected, optimistic)
        except duckdb.ConstraintException:
            if not optimistic:
                raise
            # A replay (or a producer resending its ids): use ON CONFLICT for a while, replays come in runs.
            self._keyed_until = time.monotonic() + self.keyed_conflicts_s
            written = self._transaction(got, built, rejected, optimistic=False)
        total = 0
        for sink, b in built:
            if b.after_commit is not None:
                b.after_commit()
            if b.duplicates:
                DUPLICATES_DROPPED.labels(sink.table).inc(b.duplicates)
        for (table, rows, conflict), n in zip(_targets(built), written, strict=True):
            MATERIALIZED_ROWS.labels(table).inc(n)
            if conflict == "IGNORE":
                DUPLICATES_DROPPED.labels(table).inc(rows - n)
            total += rows
        if rejected:
            log.warning("materializer_rejected", count=len(rejected), first=rejected[0][1])
        self.rows_written += total
        self.last_batch_at = time.time()
        for tp, msgs in got.items():  # each partition's oldest and newest message: produce -> queryable
            self.freshness.observe(tp.topic, (msgs[0].timestamp, msgs[-1].timestamp), self.last_batch_at)
        MATERIALIZER_BATCH.observe(total)
        MATERIALIZER_SECONDS.observe(time.perf_counter() - started)

    def _build(self, got: dict[TopicPartition, list[ConsumerRecord]]
               ) -> tuple[list[tuple[Sink, Built]], list[tuple[ConsumerRecord, str]]]:
        ctx = Context(self.cluster_id or "")
        by_topic: dict[str, list[ConsumerRecord]] = defaultdict(list)
        for tp, msgs in got.items():
            by_topic[tp.topic].extend(msgs)
        built = [(self.sinks[topic], self.sinks[topic].build(msgs, ctx)) for topic, msgs in by_topic.items()]
        return built, [r for _, b in built for r in b.rejected]

    def _transaction(self, got: dict[TopicPartition, list[ConsumerRecord]], built: list[tuple[Sink, Built]],
                     rejected: list[tuple[ConsumerRecord, str]], optimistic: bool) -> list[int]:
        """Rows and offsets in one transaction; returns rows written per `_targets` entry.

        `optimistic` writes a keyed sink's own table without ON CONFLICT (a stored key raises, see write_arrow).
        """
        cur = self.con.cursor()
        cur.begin()
        try:
            written = []
            for sink, b in built:
                for statement in b.statements:
                    cur.execute(statement)
                if b.table is not None and b.table.num_rows:
                    keyed = optimistic and sink.conflict == "IGNORE"
                    written.append(write_arrow(cur, sink.table, b.table, None if keyed else sink.conflict))
                written += [write_arrow(cur, w.table, w.batch, w.conflict, w.sql) for w in b.writes if w.batch.num_rows]
            if rejected:
                write_arrow(cur, "dead_letters", rejected_rows(rejected, self.cluster_id or ""))
            write_arrow(cur, "materializer_offsets", self._offsets_batch(got), conflict="REPLACE")
            cur.commit()
        except BaseException:
            rollback(cur)
            raise
        return written

    def _offsets_batch(self, got: dict[TopicPartition, list[ConsumerRecord]]) -> pa.Table:
        tps = list(got)
        n = len(tps)
        now = int(time.time() * 1_000_000)
        return pa.table({
            "consumer": [self.consumer_name] * n,
            "cluster_id": [self.cluster_id] * n,
            "topic": [tp.topic for tp in tps],
            "partition": pa.array([tp.partition for tp in tps], pa.int32()),
            "next_offset": [got[tp][-1].offset + 1 for tp in tps],
            "updated_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        })

    def _update_lag(self, consumer: Any, got: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for tp, msgs in got.items():
            high = consumer.highwater(tp)
            if high is not None:
                CONSUMER_LAG.labels(tp.topic, tp.partition).set(max(0, high - (msgs[-1].offset + 1)))


def _size(got: dict[TopicPartition, list[ConsumerRecord]]) -> int:
    return sum(len(m.value or b"") for msgs in got.values() for m in msgs)


async def _reached(consumer: Any, ends: dict[TopicPartition, int]) -> bool:
    """Whether the consumer has read up to these offsets on every partition (a busy stream never idles).

    Bounded: `position` waits for an offset lookup, which never ends while the broker is away."""
    async def positions() -> bool:
        return all([await consumer.position(tp) >= end for tp, end in ends.items()])

    try:
        return await asyncio.wait_for(positions(), 1.0)
    except TimeoutError:
        return False


def _targets(built: list[tuple[Sink, Built]]) -> list[tuple[str, int, str | None]]:
    """(table, rows, conflict) of every write `_transaction` makes for these batches, in its order."""
    out = []
    for sink, b in built:
        if b.table is not None and b.table.num_rows:
            out.append((sink.table, b.table.num_rows, sink.conflict))
        out += [(w.table, w.batch.num_rows, "IGNORE" if w.drops_duplicates else None)
                for w in b.writes if w.batch.num_rows]
    return out
