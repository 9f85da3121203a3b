"""Consumers that never step over offsets the broker has not shown yet.

The embedded broker (Tansu 0.6, memory storage) takes a produce request's offsets first and stores its batch
after; a fetch answers with the batches stored so far. So while two producers write one partition, a fetch can
answer with the batch *after* one still being stored, and a consumer that takes the answer moves past the
missing batch and never reads it. Measured (bench/offset_gaps.py): a librdkafka consumer tailing a 4-partition
topic while one producer wrote 200,000 ~500 B events in 1 MiB batches and three others trickled single events
skipped a whole batch (1,585-2,105 events) in 3 of 10 rounds; with the one producer alone, 0 of 10. Read again
from the start, the skipped offsets were there. A Kafka broker never answers that way: its high watermark moves
only once a batch is in the log.

Both kinds of consumer hold at the first missing offset and fetch from it again until it shows, or until
HOLD_S have passed: a produce that failed after taking its offsets leaves them empty for good, and those are
then stepped over, with a warning.

* aiokafka (the materializer, Faust's agents): `install()` makes each fetched partition's records stop before
  a batch that begins past the offset reached so far, so the position stays there and the next fetch asks
  again. Kafka answers that way only for compacted topics (whole batches removed); streamdesk has none, so this
  is always on.
* librdkafka (`broker/batch_consumer.py`): it hides transaction markers and aborted records, so a gap in the
  offsets it hands over is normal on Kafka. It holds only on the embedded broker (`reorders_batches`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from aiokafka.consumer import fetcher as aiokafka_fetcher

from pipeline.metrics import OFFSET_GAPS

log = structlog.get_logger(__name__)

HOLD_S = 5.0  # how long a missing offset is waited for before it is stepped over
EMBEDDED_CLUSTER_PREFIX = "streamdesk-"  # broker/embedded.py names every cluster it starts so


def reorders_batches(cluster_id: str) -> bool:
    """Whether this cluster is the embedded broker, which can answer a fetch with a later batch first."""
    return cluster_id.startswith(EMBEDDED_CLUSTER_PREFIX)


class Holds:
    """When each missing offset was first seen, so that it is waited for at most `hold_s`."""

    def __init__(self, hold_s: float = HOLD_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold_s = hold_s
        self.clock = clock
        self._since: dict[tuple[str, int, int], float] = {}

    def wait(self, topic: str, partition: int, missing: int, found: int) -> bool:
        """Offsets missing..found-1 were not in a fetch answer: True to fetch from `missing` again, False to
        step over them (waited long enough)."""
        now = self.clock()
        key = (topic, partition, missing)
        since = self._since.get(key)
        if since is None:
            if len(self._since) > 10_000:  # forget what was resolved long ago
                self._since = {k: t for k, t in self._since.items() if now - t < 10 * self.hold_s}
            since = self._since[key] = now
            OFFSET_GAPS.labels(topic, "held").inc()
            log.info("offset_gap_held", topic=topic, partition=partition, first=missing, last=found - 1)
        if now - since < self.hold_s:
            return True
        del self._since[key]
        OFFSET_GAPS.labels(topic, "skipped").inc()
        log.warning("offset_gap_skipped", topic=topic, partition=partition, first=missing, last=found - 1,
                    waited_s=round(now - since, 1))
        return False


def first_gap(offsets: list[int], expected: int, start: int = 0) -> int | None:
    """The index of the first of `offsets[start:]` that does not follow on from `expected` (the offset due at
    `start`) and the ones before it, or None. Offsets come in increasing order."""
    if offsets[start] == expected and offsets[-1] - expected == len(offsets) - 1 - start:
        return None
    for i in range(start, len(offsets)):
        if offsets[i] != expected + i - start:
            return i
    return None


HOLDS = Holds()  # one per process: aiokafka builds a record reader per fetch, with nowhere to keep state


class _GaplessRecords:
    """A fetch answer's record batches, ending before the first one that begins past the owner's position."""

    def __init__(self, records: Any, owner: GuardedPartitionRecords) -> None:
        self._records = records
        self._owner = owner
        self._next: Any = None
        self._ended = False

    def has_next(self) -> bool:
        if self._next is not None:
            return True
        if self._ended or not self._records.has_next():
            return False
        batch = self._records.next_batch()
        reached = self._owner.next_fetch_offset
        if batch.base_offset > reached:
            tp = self._owner.tp
            if HOLDS.wait(tp.topic, tp.partition, reached, batch.base_offset):
                self._ended = True  # the position stays at `reached`: the next fetch asks for it again
                return False
        self._next = batch
        return True

    def next_batch(self) -> Any:
        if not self.has_next():
            return None
        batch, self._next = self._next, None
        return batch

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())


class GuardedPartitionRecords(aiokafka_fetcher.PartitionRecords):
    """aiokafka's reader of one partition's fetched records, reading only up to a gap (see the module)."""

    def __init__(self, tp: Any, records: Any, *args: Any, **kwargs: Any) -> None:
        self.tp = tp
        super().__init__(tp, _GaplessRecords(records, self), *args, **kwargs)


def install() -> None:
    """Every aiokafka consumer in this process reads with the guard from its next fetch on; idempotent."""
    aiokafka_fetcher.PartitionRecords = GuardedPartitionRecords
