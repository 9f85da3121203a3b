"""Integration tests: the real embedded broker (tests/conftest.py), unique topics per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.main import create_app
from pipeline.broker.kafka import ensure_topics
from pipeline.broker.topics import pipeline_topics
from pipeline.settings import Settings
from tests.helpers import checked_client, start_cli, stop_process


def env_for(settings: Settings) -> dict[str, str]:
    return {
        "STREAMDESK_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "STREAMDESK_DATA_DIR": str(settings.data_dir),
        "STREAMDESK_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMDESK_PARTITIONS": str(settings.partitions),
        "STREAMDESK_LOG_FORMAT": "json",
    }


@contextmanager
def api_on(bootstrap: str, tmp: Path, name: str, worker: bool = True, **overrides: Any) -> Iterator[TestClient]:
    """The api (TestClient, lifespan run) on unique topics of the real broker, with a worker process unless not."""
    s = Settings(kafka_bootstrap=bootstrap, data_dir=tmp / "data", partitions=2,
                 topic_prefix=f"{name}{uuid.uuid4().hex[:8]}.", _env_file=None, **overrides)
    asyncio.run(ensure_topics(bootstrap, pipeline_topics(s)))
    proc = start_cli(["worker"], env_for(s), tmp / "worker.log") if worker else None
    try:
        with checked_client(create_app(s)) as client:
            client.settings = s
            yield client
    finally:
        if proc is not None:
            stop_process(proc)
