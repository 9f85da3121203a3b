"""Dead letters as rows: both `<topic>.dlq` records and internal-topic messages the materializer rejects."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import orjson
import pyarrow as pa
from aiokafka.structs import ConsumerRecord

from pipeline.calls.redact import redact_bytes
from pipeline.ids import derived_id

SCHEMA = pa.schema([
    ("dead_letter_id", pa.string()), ("dlq_topic", pa.string()), ("error", pa.string()), ("topic", pa.string()),
    ("partition", pa.int32()), ("offset", pa.int64()), ("index", pa.int32()),
    ("rejected_at", pa.timestamp("ms", tz="UTC")), ("value", pa.binary()), ("size", pa.int64()),
    ("sha256", pa.string()),
])


def dlq_rows(msgs: Sequence[ConsumerRecord], cluster_id: str) -> tuple[pa.Table, list[tuple[ConsumerRecord, str]]]:
    """`<topic>.dlq` messages -> rows keyed by their *source* coordinates (a replayed rejection adds nothing)."""
    rows, bad = [], []
    for m in msgs:
        try:
            d = orjson.loads(m.value)
            # Letters are redacted when written; again here for ones written before that, or by other producers.
            value = redact_bytes(base64.b64decode(d["value_b64"])) if d.get("value_b64") else None
            rows.append({
                "dead_letter_id": derived_id(cluster_id, d["topic"], d["partition"], d["offset"], d.get("index")),
                "dlq_topic": m.topic, "error": str(d["error"]), "topic": d["topic"], "partition": d["partition"],
                "offset": d["offset"], "index": d.get("index"), "rejected_at": d.get("timestamp") or m.timestamp,
                "value": value, "size": d.get("size", len(value) if value is not None else None),
                "sha256": d.get("sha256"),
            })
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            bad.append((m, f"not a dead-letter record: {exc}"))
    return pa.Table.from_pylist(rows, schema=SCHEMA), bad


def rejected_rows(rejected: Sequence[tuple[ConsumerRecord, str]], cluster_id: str) -> pa.Table:
    """Messages on internal topics that no sink could read: kept whole (credentials redacted), never skipped."""
    rows = [{
        "dead_letter_id": derived_id(cluster_id, m.topic, m.partition, m.offset, None), "dlq_topic": None,
        "error": reason, "topic": m.topic, "partition": m.partition, "offset": m.offset, "index": None,
        "rejected_at": m.timestamp, "value": redact_bytes(m.value),
        "size": len(m.value) if m.value is not None else None, "sha256": None,
    } for m, reason in rejected]
    return pa.Table.from_pylist(rows, schema=SCHEMA)
