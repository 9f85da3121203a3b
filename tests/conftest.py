"""Shared by every test directory: one built copy of the local embedding model (data/models, as `make up`
uses), and one real embedded broker per test session with unique topics per test (integration, security)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_configure() -> None:
    os.environ.setdefault("STREAMDESK_MODELS_DIR", str(Path(__file__).resolve().parent.parent / "data" / "models"))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from pipeline.broker.embedded import start_embedded_broker
    from pipeline.broker.kafka import wait_for_broker

    log = tmp_path_factory.mktemp("broker") / "broker.log"
    b = start_embedded_broker(None, log_path=log)
    try:
        b.cluster_id = asyncio.run(wait_for_broker(b.bootstrap, timeout_s=30))
        yield b
    finally:
        b.stop()


@pytest.fixture
def settings(broker, tmp_path, request: pytest.FixtureRequest):
    from pipeline.broker.kafka import ensure_topics
    from pipeline.broker.topics import pipeline_topics
    from pipeline.settings import Settings

    name = request.node.name.replace("[", "_").replace("]", "")[:40]
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=2,
                 topic_prefix=f"t{uuid.uuid4().hex[:8]}.{name}.", _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    return s


from tests.integration.predictions_env import api, cohort  # noqa: E402, F401 - session fixtures for seed 004
