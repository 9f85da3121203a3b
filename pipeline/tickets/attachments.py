"""Attachment records -> row values: metadata, and for fetched content its sha256, size and text."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from typing import Any

from pipeline.tickets import fields as f
from pipeline.tickets.html import html_to_text, normalize_text

MAX_CONTENT_TEXT = 65_536  # characters kept from a text attachment: enough to search, small enough for a row
TEXT_TYPES = ("application/json", "application/xml", "application/csv", "application/x-ndjson")

Rejects = list[tuple[str, Any]]  # (reason, the part of the record it concerns)


def attachment_values(rec: Any, parent_kind: str | None = None, parent_id: str | None = None,
                      ticket_id: str | None = None, fallback_updated: datetime | None = None) -> dict[str, Any]:
    """One attachment object (standalone, or embedded in its ticket or conversation) -> Attachment fields."""
    if not isinstance(rec, dict):
        raise f.Invalid(f"attachment is a JSON {type(rec).__name__}, not an object")
    source_id = f.ident(rec.get("id"), "id")
    if parent_kind is None:  # a standalone record names its parent itself
        conversation = f.opt_ident(rec.get("conversation_id"), "conversation_id")
        ticket_id = f.opt_ident(rec.get("ticket_id"), "ticket_id")
        parent_kind, parent_id = (("conversation", conversation) if conversation
                                  else ("ticket", ticket_id) if ticket_id else (None, None))
    created = f.opt_timestamp(rec.get("created_at"), "created_at")
    updated = f.opt_timestamp(rec.get("updated_at"), "updated_at") or created or fallback_updated
    if updated is None:
        raise f.Invalid("missing updated_at")
    content_type = f.text(rec.get("content_type"), "content_type")
    return {"source_id": source_id, "name": f.text(rec.get("name"), "name") or "", "content_type": content_type,
            "size": f.count(rec.get("size"), "size"), "attachment_url": f.url_without_query(rec.get("attachment_url")),
            "parent_kind": parent_kind, "parent_id": parent_id, "ticket_id": ticket_id, "created_at": created,
            "updated_at": updated, **_content(rec, content_type)}


def embedded_attachments(rec: dict[str, Any], parent_kind: str, parent_id: str, ticket_id: str,
                         updated: datetime) -> tuple[list[tuple[Any, dict[str, Any]]], Rejects]:
    """A ticket's or conversation's `attachments`: (item, values) for the good ones, a reason for each bad one."""
    items = rec.get("attachments") or []
    if not isinstance(items, list):
        return [], [(f"{parent_kind} {parent_id}: attachments is not a list", items)]
    good: list[tuple[Any, dict[str, Any]]] = []
    rejects: Rejects = []
    for n, item in enumerate(items):
        try:
            good.append((item, attachment_values(item, parent_kind, parent_id, ticket_id, updated)))
        except f.Invalid as exc:
            rejects.append((f"{parent_kind} {parent_id} {_where(item, n)}: {exc}", item))
    return good, rejects


def _where(item: Any, n: int) -> str:
    rid = item.get("id") if isinstance(item, dict) else None
    return f"attachment {rid}" if type(rid) in (int, str) else f"attachments[{n}]"


def _content(rec: dict[str, Any], content_type: str | None) -> dict[str, Any]:
    """Content fields: computed from `content_b64` when the bytes travelled along, else as the record gives them."""
    values: dict[str, Any] = {"content_truncated": f.flag(rec.get("content_truncated"), "content_truncated"),
                              "content_skipped": f.text(rec.get("content_skipped"), "content_skipped")}
    encoded = f.text(rec.get("content_b64"), "content_b64")
    if encoded is None:
        text = f.text(rec.get("content_text"), "content_text")
        return values | {"content_sha256": f.sha256(rec.get("content_sha256")),
                         "content_size": f.count(rec.get("content_size"), "content_size"),
                         "content_text": text[:MAX_CONTENT_TEXT] if text else text}
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise f.Invalid("content_b64 is not base64") from None
    return values | {"content_sha256": hashlib.sha256(content).hexdigest(), "content_size": len(content),
                     "content_text": content_text(content, content_type)}


def content_text(content: bytes, content_type: str | None) -> str | None:
    """The text of a text-like attachment (plain, CSV, HTML, JSON…); None for binary types."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if not (kind.startswith("text/") or kind in TEXT_TYPES):
        return None
    decoded = content.decode("utf-8", errors="replace")
    text = html_to_text(decoded) if kind == "text/html" else normalize_text(decoded)
    return text[:MAX_CONTENT_TEXT]
