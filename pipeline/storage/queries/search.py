"""What the api's search index reads: stored vectors past a seq with their object's current text, the objects
still to embed, and whether the worker stored (or refused) what the api asked it to embed."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

INDEXED = """
    SELECT v.seq, v.tenant, v.key, v.kind, o.title, o.text, o.updated_at, v.vector, v.embedded_at
    FROM ticket_vectors v LEFT JOIN integrated_objects o ON o.tenant = v.tenant AND o.key = v.key
    WHERE v.seq > ? ORDER BY v.seq"""
PENDING = """
    SELECT o.tenant, o.key, o.object_type, o.updated_at, o.title, coalesce(o.summary, ''), o.text
    FROM integrated_objects o LEFT JOIN ticket_vectors v ON v.tenant = o.tenant AND v.key = o.key
    WHERE o.tenant = ? AND (? OR v.key IS NULL OR v.updated_at < o.updated_at OR v.model <> ?)"""


def vectors_since(cur: duckdb.DuckDBPyConnection, seq: int) -> pa.Table:
    """Vectors written after `seq`, in seq order, with their object's title and text (NULL if it is not stored
    yet): an Arrow table, so the vectors stay numpy."""
    return cur.sql(INDEXED, params=[seq]).to_arrow_table()


def pending_objects(cur: duckdb.DuckDBPyConnection, tenant: str, force: bool,
                    model: str) -> tuple[list[tuple[Any, ...]], int, int]:
    """The company's objects with no vector, an older one or one of another model (all with `force`): rows of
    (tenant, key, object_type, updated_at, title, summary, text); the company's object count; the last vector
    seq before the question, so later writes can be told apart."""
    since = cur.execute("SELECT coalesce(max(seq), 0) FROM ticket_vectors").fetchone()[0]
    rows = cur.execute(PENDING, [tenant, force, model]).fetchall()
    total = cur.execute("SELECT count(*) FROM integrated_objects WHERE tenant = ?", [tenant]).fetchone()[0]
    return rows, total, since


def vectors_written_since(cur: duckdb.DuckDBPyConnection, tenant: str, keys: list[str], since: int) -> int:
    """How many of `keys` got a vector written after seq `since`."""
    cur.register("_requested", pa.table({"key": keys}))
    try:
        return cur.execute("SELECT count(*) FROM ticket_vectors v JOIN _requested r ON r.key = v.key "
                           "WHERE v.tenant = ? AND v.seq > ?", [tenant, since]).fetchall()[0][0]
    finally:
        cur.unregister("_requested")


def dead_lettered(cur: duckdb.DuckDBPyConnection, topic: str, sent: list[tuple[int, int]]) -> str | None:
    """The error of the first of these (partition, offset) messages of `topic` that was dead-lettered, if any."""
    cur.register("_sent", pa.table({"p": [p for p, _ in sent], "o": [o for _, o in sent]}))
    try:
        rows = cur.execute('SELECT error FROM dead_letters d JOIN _sent s ON d."partition" = s.p AND '
                           'd."offset" = s.o WHERE d.topic = ? LIMIT 1', [topic]).fetchall()
    finally:
        cur.unregister("_sent")
    return rows[0][0] if rows else None
