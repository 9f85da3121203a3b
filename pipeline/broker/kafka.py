"""Small async helpers over aiokafka: cluster identity, topic creation, tuned clients."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from pipeline.broker import offset_gaps
from pipeline.broker.topics import TopicSpec
from pipeline.settings import Settings

log = structlog.get_logger(__name__)

TOPIC_ALREADY_EXISTS = 36


async def cluster_id(bootstrap: str, timeout_s: float = 10.0) -> str:
    """The broker's cluster id: part of every derived record id and of the materializer's offset keys."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        info = await admin.describe_cluster()
        return str(info["cluster_id"])
    finally:
        await admin.close()


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 15.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    specs = list(specs)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return []
        new = [NewTopic(s.name, s.partitions, s.replication, topic_configs=_configs(s)) for s in missing]
        resp = await admin.create_topics(new)
        for topic, code, *rest in resp.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise KafkaError(f"could not create topic {topic}: error {code} {rest}")
        log.info("topics_created", topics=[s.name for s in missing])
        return [s.name for s in missing]
    finally:
        await admin.close()


def _configs(spec: TopicSpec) -> dict[str, str]:
    """Kafka honours these per topic (the embedded broker ignores them)."""
    configs = dict(spec.configs)
    if spec.max_message_bytes is not None:
        configs["max.message.bytes"] = str(spec.max_message_bytes)
    return configs


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def wait_for_broker(bootstrap: str, timeout_s: float = 30.0) -> str:
    """Block until the broker answers a metadata request; returns its cluster id."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    while True:  # a plain TCP probe first, so a broker still starting is not logged as an error
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
            writer.close()
            break
        except (TimeoutError, OSError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"broker at {bootstrap} is not listening") from exc
            await asyncio.sleep(0.1)
    while True:
        try:
            return await cluster_id(bootstrap, timeout_s=3.0)
        except (TimeoutError, KafkaConnectionError, KafkaError, OSError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"broker at {bootstrap} did not answer within {timeout_s:.0f} s") from exc
            await asyncio.sleep(0.2)


def make_producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    opts: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap(),
        "linger_ms": 5,
        # A batch of small messages stays within what an entry topic accepts; one bigger message goes alone.
        "max_batch_size": min(1 << 20, settings.max_message_bytes),
        "max_request_size": settings.max_transport_bytes,
        "acks": 1,
        "request_timeout_ms": 10_000,
    }
    opts.update(overrides)
    return AIOKafkaProducer(**opts)


def make_consumer(settings: Settings, *topics: str, group: str | None, **overrides: object) -> AIOKafkaConsumer:
    opts: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap(),
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": int(settings.session_timeout_s * 1000),
        "heartbeat_interval_ms": int(settings.heartbeat_interval_s * 1000),
        "rebalance_timeout_ms": int(settings.session_timeout_s * 1000),
        "max_partition_fetch_bytes": settings.max_transport_bytes,
        "fetch_max_bytes": 16 * 1024 * 1024,
        "max_poll_records": 5000,
        # The embedded broker answers an idle fetch when the wait runs out, not when data arrives (measured):
        # aiokafka's 500 ms default put ~250 ms on every hop's freshness.
        "fetch_max_wait_ms": 100,
    }
    opts.update(overrides)
    offset_gaps.install()
    return AIOKafkaConsumer(*topics, **opts)
