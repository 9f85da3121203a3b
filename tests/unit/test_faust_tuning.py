"""The worker's consumers wait at most 50 ms per fetch, and an upgrade of Faust or aiokafka that moves the private
names this relies on fails here, not as a silent 0-1.5 s added to every agent hop."""

from __future__ import annotations

import asyncio
import inspect

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from pipeline.broker.faust_tuning import FETCH_MAX_WAIT_MS, apply_faust_tunings
from pipeline.settings import Settings
from pipeline.worker import create_faust_app


def test_a_worker_consumer_built_by_faust_waits_at_most_fetch_max_wait_ms(tmp_path):
    async def build() -> int:
        app = create_faust_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, _env_file=None))
        consumer = app.consumer._thread._create_worker_consumer(app.transport)  # Faust's own path, not started
        assert isinstance(consumer, AIOKafkaConsumer)
        return consumer._fetch_max_wait_ms

    assert asyncio.run(build()) == FETCH_MAX_WAIT_MS == 50


def test_the_private_names_relied_on_still_exist():
    assert list(inspect.signature(AIOKafkaConsumerThread._create_worker_consumer).parameters) == ["self", "transport"]
    # aiokafka keeps the constructor's fetch_max_wait_ms in this attribute and builds its fetcher from it in start().
    assert "self._fetch_max_wait_ms" in inspect.getsource(AIOKafkaConsumer.start)

    async def default() -> int:
        return AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=1234)._fetch_max_wait_ms

    assert asyncio.run(default()) == 1234


def test_applying_twice_wraps_once():
    apply_faust_tunings()
    wrapped = AIOKafkaConsumerThread._create_worker_consumer
    apply_faust_tunings()
    assert AIOKafkaConsumerThread._create_worker_consumer is wrapped
