"""One real embedded broker per test session; every test gets its own topics (a unique prefix)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from pipeline.broker.embedded import EmbeddedBroker, start_embedded_broker
from pipeline.broker.kafka import ensure_topics, wait_for_broker
from pipeline.broker.topics import pipeline_topics
from pipeline.settings import Settings


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    b = start_embedded_broker(None, log_path=log)
    try:
        b.cluster_id = asyncio.run(wait_for_broker(b.bootstrap, timeout_s=30))
        yield b
    finally:
        b.stop()


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path, request: pytest.FixtureRequest) -> Settings:
    name = request.node.name.replace("[", "_").replace("]", "")[:40]
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=2,
                 topic_prefix=f"t{uuid.uuid4().hex[:8]}.{name}.", _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    return s


def env_for(settings: Settings) -> dict[str, str]:
    return {
        "STREAMDESK_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "STREAMDESK_DATA_DIR": str(settings.data_dir),
        "STREAMDESK_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMDESK_PARTITIONS": str(settings.partitions),
        "STREAMDESK_LOG_FORMAT": "json",
    }


from tests.integration.predictions_env import api, cohort  # noqa: E402, F401 - session fixtures for seed 004
