"""Kafka records as the pure code sees them: one `Message`, or one partition's messages column-wise (`Batch`,
what a batch consumer hands over, without an object per message), and what an agent's handler sends to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol


class Message(NamedTuple):
    """The parts of a Kafka record a normalizer or validator needs."""

    partition: int
    offset: int
    timestamp_ms: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Batch:
    """One partition's messages in offset order, as three parallel lists."""

    partition: int
    offsets: list[int]
    timestamps_ms: list[int]
    values: list[bytes | None]


class Sender(Protocol):
    """What an agent's handler sends to: a Faust topic, or in tests something that records."""

    async def send(self, *, key: bytes | None = None, value: bytes) -> Any: ...
