"""Integration tests: the real embedded broker (tests/conftest.py), unique topics per test."""

from __future__ import annotations

from pipeline.settings import Settings


def env_for(settings: Settings) -> dict[str, str]:
    return {
        "STREAMDESK_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "STREAMDESK_DATA_DIR": str(settings.data_dir),
        "STREAMDESK_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMDESK_PARTITIONS": str(settings.partitions),
        "STREAMDESK_LOG_FORMAT": "json",
    }
