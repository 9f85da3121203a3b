"""The tickets stream's tables as their row models in schemas/tickets.py describe them, and how a batch of
normalized rows is upserted: a newer `updated_at` replaces a row, an equal one is a duplicate (counted), an
older one is ignored (a replay or a late copy). schema.py holds the DDL; tests/unit/test_schema.py checks that
each table's columns are its model's fields, in order and type."""

from __future__ import annotations

import types
from datetime import datetime
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from schemas.tickets import Attachment, Conversation, IntegratedObject, KbArticle, KbCategory, KbFolder, Ticket

MODELS: dict[str, type[BaseModel]] = {
    "tickets": Ticket, "conversations": Conversation, "kb_articles": KbArticle, "kb_categories": KbCategory,
    "kb_folders": KbFolder, "attachments": Attachment, "integrated_objects": IntegratedObject,
}


def _sql_type(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return _sql_type(next(a for a in get_args(annotation) if a is not type(None)))
    if origin is list:
        return "VARCHAR[]"
    if origin is dict or annotation is dict:
        return "JSON"
    if origin is Literal or annotation is str:
        return "VARCHAR"
    if getattr(annotation, "__metadata__", None) is not None:  # Annotated[...]
        return _sql_type(get_args(annotation)[0])
    if annotation is datetime or getattr(annotation, "__name__", "") == "AwareDatetime":
        return "TIMESTAMPTZ"
    return {bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE"}.get(annotation, "VARCHAR")


def columns(model: type[BaseModel]) -> dict[str, str]:
    cols = {name: _sql_type(f.annotation) for name, f in model.model_fields.items()}
    cols |= {name: "VARCHAR" for name in model.model_computed_fields}
    return cols


VECTOR_COLUMNS = ("kind", "model", "text_hash", "vector", "updated_at", "embedded_at", "seq")
# A vector for the same or a newer version replaces the stored one (a rebuild, a model change); an older
# one (a late copy) is ignored. Either way a write takes the next seq.
UPSERT_VECTORS = ("INSERT INTO ticket_vectors BY NAME SELECT *, nextval('ticket_vectors_seq') AS seq FROM _batch "
                  "ON CONFLICT (tenant, key) DO UPDATE SET "
                  + ", ".join(f"{c} = excluded.{c}" for c in VECTOR_COLUMNS)
                  + " WHERE ticket_vectors.updated_at <= excluded.updated_at")


def upsert_sql(table: str) -> str:
    """Newer wins; for attachments, a processed copy (fetched, or skipped with a reason) also beats metadata-only
    at the same updated_at."""
    cols = [c for c in columns(MODELS[table]) if c != "key"]
    newer = f"{table}.updated_at < excluded.updated_at"
    if table == "attachments":
        newer = (f"({newer} OR ({table}.updated_at = excluded.updated_at AND {table}.content_sha256 IS NULL "
                 f"AND {table}.content_skipped IS NULL AND (excluded.content_sha256 IS NOT NULL OR "
                 "excluded.content_skipped IS NOT NULL)))")
    return (f"INSERT INTO {table} BY NAME SELECT * FROM _batch ON CONFLICT (key) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in cols) + f" WHERE {newer}")
