"""Dead letters: failure is data. Built by every entry-topic consumer, sent to `<topic>.dlq`."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pipeline.calls.redact import redact_bytes
from schemas.dlq import DeadLetterRecord

MAX_KEPT_BYTES = 64 * 1024


@dataclass(slots=True, frozen=True)
class DeadLetter:
    """One rejected message (or one element of a rejected batch) and why."""

    error: str
    topic: str
    partition: int
    offset: int
    index: int | None
    value: bytes | None
    timestamp_ms: int

    @classmethod
    def of(cls, error: str, topic: str, partition: int, offset: int, index: int | None,
           value: bytes | None) -> DeadLetter:
        """A letter stamped now, its value with credentials redacted (see `redact_bytes`)."""
        # Secrets never sit in a topic or in DuckDB in clear; the exact bytes stay at the source coordinates
        # (topic, partition, offset) for a replay, until the source topic's retention ends.
        return cls(error, topic, partition, offset, index, redact_bytes(value), int(time.time() * 1000))

    @classmethod
    def not_a(cls, model: type, exc: Any, m: Any) -> DeadLetter:
        """A message of an internal topic that is not the `model` it should carry (a pydantic ValidationError)."""
        return cls.of(f"not a {model.__name__}: {exc.errors(include_url=False)[:3]}", m.topic, m.partition, m.offset,
                      None, m.value)

    def to_json(self) -> bytes:
        """The `<topic>.dlq` record (schemas/dlq.py); a value over 64 KiB keeps its head, its (redacted) size and
        sha256."""
        record = DeadLetterRecord(error=self.error, topic=self.topic, partition=self.partition, offset=self.offset,
                                  index=self.index, timestamp=self.timestamp_ms, value_b64=None)
        if self.value is not None:
            record.value_b64 = base64.b64encode(self.value[:MAX_KEPT_BYTES]).decode()
            if len(self.value) > MAX_KEPT_BYTES:
                record.size = len(self.value)
                record.sha256 = hashlib.sha256(self.value).hexdigest()
        return record.model_dump_json(exclude_unset=True).encode()


SendLetter = Callable[[DeadLetter], Awaitable[None]]  # what an agent's handler calls with each letter
