"""The api's one way to publish: one producer, every send bounded in time, every failure one `BrokerUnavailable`.

A route that publishes answers within `publish_timeout_s` whatever the broker does: a dead broker is a 503
(with Retry-After) in the route's error shape, never a hang. A send that timed out may still land later; the
records it carries have deterministic keys, so a client's retry is at-least-once, never a silent loss.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from api.limits import json_batches
from api.refusals import BrokerUnavailable
from pipeline.broker.kafka import make_producer
from pipeline.settings import Settings

RETRY_AFTER_S = 5


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> tuple[int, int]:
        """Publish one message to a pipeline topic (by its unprefixed name); returns (partition, offset)."""
        return (await self.send_many(topic, [(key, value)]))[0]

    async def send_many(self, topic: str, messages: Sequence[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
        """Publish messages in order; all are acknowledged, or BrokerUnavailable within the time limit (a route
        answers it as 503 with Retry-After, in its own error shape)."""
        name = self.settings.topic(topic)
        try:
            return await asyncio.wait_for(self._send(name, messages), self.settings.publish_timeout_s)
        except TimeoutError:
            raise BrokerUnavailable(name, f"the broker did not answer within {self.settings.publish_timeout_s:g} s",
                                    RETRY_AFTER_S) from None
        except Exception as exc:  # noqa: BLE001 - any client or broker error is the same answer to the caller
            raise BrokerUnavailable(name, str(exc) or type(exc).__name__, RETRY_AFTER_S) from None

    async def send_json_batches(self, topic: str, items: list[Any], key: bytes) -> int:
        """Items published as JSON arrays of at most `max_message_bytes` each, all acknowledged; TooLarge if one
        item cannot fit alone. Returns the number of messages."""
        payloads = await asyncio.to_thread(lambda: list(json_batches(items, self.settings.max_message_bytes)))
        await self.send_many(topic, [(key, p) for p in payloads])
        return len(payloads)

    async def _send(self, topic: str, messages: Sequence[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
        producer = await self._started()
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        landed = await asyncio.gather(*futures)
        return [(md.partition, md.offset) for md in landed]

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.settings)
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
