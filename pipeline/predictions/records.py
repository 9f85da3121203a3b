"""Where a `sleep.records` message becomes per-user rows: validation at entry, dead letters for the rest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from pipeline.broker.entry_messages import decode_json, element_bytes
from pipeline.broker.records import Message
from pipeline.dlq import DeadLetter
from schemas.sleep import SleepRecord


def record_key(rec: SleepRecord) -> str:
    """One row per (tenant, user, kind, date[, instrument]): a corrected entry for a night replaces the old one."""
    instrument = getattr(rec.data, "instrument", "")
    raw = f"{rec.tenant}\x1f{rec.user_id}\x1f{rec.kind}\x1f{rec.date.isoformat()}\x1f{instrument}"
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def to_row(rec: SleepRecord, received_ms: int) -> dict[str, Any]:
    return {"record_key": record_key(rec), "tenant": rec.tenant, "user_id": rec.user_id, "kind": rec.kind,
            "date": rec.date.isoformat(), "data": rec.data.model_dump(mode="json"), "received_at": received_ms}


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors(include_url=False))


def validate_messages(topic: str, messages: Iterable[Message]) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """Messages (one record, or a JSON array of them) -> rows for `sleep.normalized` and dead letters."""
    rows: list[dict[str, Any]] = []
    dead: list[DeadLetter] = []
    for msg in messages:
        try:
            parsed = decode_json(msg.value)
        except ValueError as exc:
            dead.append(DeadLetter.of(str(exc), topic, msg.partition, msg.offset, None, msg.value))
            continue
        batch = isinstance(parsed, list)
        for i, obj in enumerate(parsed if batch else (parsed,)):
            try:
                if not isinstance(obj, dict):
                    raise ValueError(f"JSON {type(obj).__name__} is not a sleep record object")
                rows.append(to_row(SleepRecord.model_validate(obj), msg.timestamp_ms))
            except ValidationError as exc:
                dead.append(DeadLetter.of(_reason(exc), topic, msg.partition, msg.offset, i if batch else None,
                                          element_bytes(obj) if batch else msg.value))
            except ValueError as exc:
                dead.append(DeadLetter.of(str(exc), topic, msg.partition, msg.offset, i if batch else None,
                                          element_bytes(obj) if batch else msg.value))
    return rows, dead
