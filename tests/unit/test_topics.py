"""The topic registry is the one declaration of each topic, and agents decode and dead-letter through it alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest

from pipeline.broker.agent_topics import AgentTopics
from pipeline.broker.topics import DLQ_TOPICS, PREDICTIONS_REQUESTS, SPECS, TOPICS, dlq, pipeline_topics
from pipeline.metrics import EVENTS
from pipeline.predictions.features import build_snapshot, completeness
from pipeline.settings import Settings
from pipeline.storage.sinks import platform_sinks
from schemas.predictions import PredictionRequest, TriggerType
from simulators.sleep_cohort import generate_cohort


@pytest.fixture
def settings(tmp_path):
    return Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, topic_prefix="t1.", _env_file=None)


def test_every_registered_topic_and_dead_letter_topic_is_created_and_every_dlq_is_materialized(settings):
    created = {spec.name for spec in pipeline_topics(settings)}
    assert created == {settings.topic(t.name) for t in TOPICS} | {settings.topic(dlq(n)) for n in DLQ_TOPICS}
    sinks = {s.topic for s in platform_sinks(settings)}
    assert {settings.topic(dlq(n)) for n in DLQ_TOPICS} <= sinks


def test_every_message_model_lives_in_schemas():
    models = {t.name: t.model for t in TOPICS if t.model is not None}
    assert len(models) >= 9
    assert {n: m.__module__ for n, m in models.items() if not m.__module__.startswith("schemas.")} == {}


class FakeTopic:
    def __init__(self, name: str) -> None:
        self.name, self.sent = name, []

    async def send(self, key: bytes | None = None, value: bytes | None = None) -> None:
        self.sent.append(value)


class FakeApp:
    def __init__(self) -> None:
        self.topics: dict[str, FakeTopic] = {}

    def topic(self, name: str, **_: object) -> FakeTopic:
        return self.topics.setdefault(name, FakeTopic(name))


class FakeStream:
    def __init__(self, values: list[bytes]) -> None:
        self.values = values

    async def events(self):  # noqa: ANN201 - Faust's StreamT.events(), as far as agents use it
        for offset, value in enumerate(self.values):
            yield SimpleNamespace(message=SimpleNamespace(topic="t1.predictions.requests", partition=0, offset=offset,
                                                          value=value))


def test_a_message_that_is_not_its_topics_model_is_dead_lettered_with_reason_and_offset(settings):
    app, good = FakeApp(), _request()
    topics = AgentTopics(app, settings)
    before = EVENTS.labels("t1.predictions.requests", "dlq")._value.get()

    async def read() -> list:
        return [msg async for _, msg in topics.decoded(PREDICTIONS_REQUESTS, FakeStream([b"{oops", good, b"[]"]))]

    decoded = asyncio.run(read())
    assert [m.prediction_id for m in decoded] == ["pred_1"]
    letters = [orjson.loads(v) for v in app.topics["t1.predictions.requests.dlq"].sent]
    assert [(d["offset"], d["topic"]) for d in letters] == [(0, "t1.predictions.requests"),
                                                             (2, "t1.predictions.requests")]
    assert all(d["error"].startswith("not a PredictionRequest") for d in letters)
    assert EVENTS.labels("t1.predictions.requests", "dlq")._value.get() == before + 2


def test_an_unregistered_topic_is_refused(settings):
    topics = AgentTopics(FakeApp(), settings)
    with pytest.raises(KeyError, match="not in"):
        topics("predictions.typo")
    assert topics(dlq(PREDICTIONS_REQUESTS)).name == "t1.predictions.requests.dlq"
    assert SPECS[PREDICTIONS_REQUESTS].dead_letters


def _request() -> bytes:
    snapshot = build_snapshot("t1", "u1", generate_cohort(1, days=7, seed=5, tenant="t1")[0].records)
    now = datetime.now(UTC)
    return PredictionRequest(prediction_id="pred_1", session_id="debate_1", tenant="t1", user_id="u1",
                             trigger_type=TriggerType.MANUAL_REQUEST, requested_by="u1", requested_at=now,
                             deadline=now + timedelta(seconds=25), completeness=completeness(snapshot),
                             snapshot=snapshot).model_dump_json().encode()


def test_topics_are_created_with_the_configured_replication_min_isr_and_retention():
    from pipeline.broker.kafka import _configs

    specs = pipeline_topics(Settings(replication_factor=3, min_insync_replicas=2, topic_retention_days=90,
                                     _env_file=None))
    assert {s.replication for s in specs} == {3}
    configs = _configs(next(s for s in specs if s.name.endswith("calls.raw")))
    assert configs["min.insync.replicas"] == "2" and configs["retention.ms"] == str(90 * 86_400_000)
    assert "max.message.bytes" in configs
    default = pipeline_topics(Settings(_env_file=None))
    assert {s.replication for s in default} == {1} and all(not s.configs for s in default)
    assert _configs(pipeline_topics(Settings(topic_retention_days=-1, _env_file=None))[0])["retention.ms"] == "-1"
