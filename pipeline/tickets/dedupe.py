"""Versions of platform objects: the same (key, updated_at) twice is one row, a newer updated_at replaces it.

Within a batch `latest_per_key` keeps one row per key; the materializer then writes a row only where
`supersedes(new, stored)`, i.e. in SQL: `stored.updated_at < new.updated_at OR (stored.updated_at =
new.updated_at AND stored is metadata-only AND new is processed)` (attachments only: processed = content fetched,
or skipped with its reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from schemas.tickets import version_of

Row = Mapping[str, Any]


def updated_at(row: Row) -> datetime:
    """A row's updated_at as an aware UTC datetime, whether it is still a datetime or came back from JSON."""
    value = row["updated_at"]
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def version_key(row: Row) -> str:
    """The row's version: its key and UTC updated_at (plus the content hash of a fetched attachment)."""
    base = version_of(row["key"], updated_at(row))
    sha = row.get("content_sha256")
    return f"{base}#{sha[:16]}" if sha else base


def _rank(row: Row) -> tuple[datetime, bool]:
    # At equal updated_at a processed copy (content fetched, or skipped with its reason) outranks the
    # metadata-only copy of the same attachment.
    return updated_at(row), row.get("content_sha256") is not None or row.get("content_skipped") is not None


def completes(new: Row, old: Row) -> bool:
    """`new` is the processed copy of the metadata-only `old` (same attachment, same updated_at): an
    enrichment, not a duplicate."""
    return updated_at(new) == updated_at(old) and _rank(new)[1] and not _rank(old)[1]


def supersedes(new: Row, old: Row) -> bool:
    """True when `new` must replace the stored `old` (same key): newer, or as new but with content it lacked."""
    return _rank(new) > _rank(old)


def latest_per_key(rows: Iterable[Row]) -> list[Row]:
    """One row per key, the newest (ties: the last seen), in the order keys first appeared."""
    kept: dict[str, Row] = {}
    for row in rows:
        old = kept.get(row["key"])
        if old is None or not supersedes(old, row):
            kept[row["key"]] = row
    return list(kept.values())

