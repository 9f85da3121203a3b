"""Consumer-group lag on the real broker (pipeline/broker/lag.py): a group of this deployment that committed part
of a topic is reported that many messages behind; another deployment's group is not read; reading does not
join the group."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.broker.lag import group_lags
from pipeline.broker.topics import CALLS_RAW

pytestmark = pytest.mark.integration


def test_a_group_is_as_far_behind_as_it_has_not_committed(settings):
    topic = settings.topic(CALLS_RAW)
    ours, theirs = settings.group("calls-normalizer"), "other-deployment.calls-normalizer"

    async def run() -> list:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap())
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, b"{}", partition=i % 2)  # 5 on each of the 2 partitions
        finally:
            await producer.stop()
        for group in (ours, theirs):
            consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap(), group_id=group,
                                        enable_auto_commit=False)
            await consumer.start()
            try:
                consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
                await consumer.commit({TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 2})
            finally:
                await consumer.stop()
        return await group_lags(settings)

    lags = asyncio.run(run())
    mine = [lag for lag in lags if lag.group == ours]
    assert [(lag.topic, lag.partitions, lag.committed, lag.end, lag.lag) for lag in mine] == [(topic, 2, 7, 10, 3)]
    assert all(lag.group.startswith(f"{settings.consumer_group_prefix}.{settings.topic_prefix}") for lag in lags)
    assert theirs not in {lag.group for lag in lags}
