"""Messages of one partition, column-wise: what a batch consumer hands over, without an object per message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Batch:
    """One partition's messages in offset order, as three parallel lists."""

    partition: int
    offsets: list[int]
    timestamps_ms: list[int]
    values: list[bytes | None]
