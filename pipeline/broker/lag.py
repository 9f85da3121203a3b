"""How far each of the pipeline's consumer groups is behind: committed offset against the end of each partition.

The workers' groups (the Faust agents, the calls normalizer) commit to the broker; this asks the broker for
their committed offsets (OffsetFetch, as a consumer of that group that never joins it, so the group is not
disturbed) and for the partitions' end offsets. The api's materializer keeps its offsets in DuckDB, not in a
group; its lag is `streamdesk_consumer_lag_messages`. Only groups of this deployment are read (the
`CONSUMER_GROUP_PREFIX.TOPIC_PREFIX` they all start with).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.broker.topics import pipeline_topics
from pipeline.metrics import GROUP_LAG
from pipeline.settings import Settings


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    topic: str
    partitions: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


async def group_lags(settings: Settings, timeout_s: float = 5.0) -> list[GroupLag]:
    """Every group of this deployment, per topic it has committed on: messages behind the end (summed)."""
    return await asyncio.wait_for(_group_lags(settings, timeout_s), timeout_s)


async def _group_lags(settings: Settings, timeout_s: float) -> list[GroupLag]:
    bootstrap, ms = settings.bootstrap(), int(timeout_s * 1000)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ms)
    try:  # started inside: a start cancelled by the time limit still closes what it opened
        await admin.start()
        prefix = f"{settings.consumer_group_prefix}.{settings.topic_prefix}"
        groups = sorted(g for g, *_ in await admin.list_consumer_groups() if g.startswith(prefix))
    finally:
        await admin.close()
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=ms)
    try:
        await probe.start()
        names = {spec.name for spec in pipeline_topics(settings)}
        await probe.topics()
        tps = [TopicPartition(t, p) for t in sorted(names) for p in sorted(probe.partitions_for_topic(t) or ())]
        ends = await probe.end_offsets(tps) if tps else {}
    finally:
        await probe.stop()
    lags: list[GroupLag] = []
    for group in groups:
        member = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                  request_timeout_ms=ms)
        try:
            await member.start()  # never subscribes: it does not join the group, only reads its offsets
            per_topic: dict[str, tuple[int, int, int]] = {}
            for tp in tps:
                committed = await member.committed(tp)
                if committed is None:
                    continue
                n, done, end = per_topic.get(tp.topic, (0, 0, 0))
                per_topic[tp.topic] = (n + 1, done + committed, end + ends[tp])
        finally:
            await member.stop()
        for topic, (n, done, end) in sorted(per_topic.items()):
            lag = GroupLag(group, topic, n, done, end)
            GROUP_LAG.labels(group, topic).set(lag.lag)
            lags.append(lag)
    return lags


class LagProbe:
    """`group_lags`, asked at most every `every_s` (the console's Pipeline page draws every 2 s)."""

    def __init__(self, settings: Settings, every_s: float = 10.0) -> None:
        self.settings, self.every_s = settings, every_s
        self._last: tuple[float, list[GroupLag] | str] | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> list[GroupLag] | str:
        """The lags, or why they could not be read (the broker away: a sentence, not an exception)."""
        async with self._lock:
            if self._last is None or time.monotonic() - self._last[0] >= self.every_s:
                try:
                    found: list[GroupLag] | str = await group_lags(self.settings)
                except Exception as exc:  # noqa: BLE001 - shown on the page; the page itself must still draw
                    found = f"could not read the groups' offsets: {type(exc).__name__}: {exc}"
                self._last = (time.monotonic(), found)
            return self._last[1]
