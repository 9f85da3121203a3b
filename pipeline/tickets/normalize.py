"""Where a `tickets.raw` message becomes rows: Freshdesk records -> tickets, conversations, KB and attachment rows.

Pure, no broker; never raises for bad input. A message is one envelope or a JSON array of them; what cannot
become a row is a dead letter with the reason and its source partition, offset and batch index, and the
good records around it survive. Text fields come from the HTML (see `_texts`), secrets never reach a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from pipeline.broker.entry_messages import decode_json, element_bytes
from pipeline.broker.records import Message
from pipeline.dlq import DeadLetter
from pipeline.tickets import fields as f
from pipeline.tickets.attachments import Rejects, attachment_values, embedded_attachments
from pipeline.tickets.html import HtmlText, html_to_texts, normalize_text, strip_quoted_text
from schemas.tickets import (
    Attachment,
    Conversation,
    KbArticle,
    KbCategory,
    KbFolder,
    RawRecord,
    Ticket,
)

TABLES = ("tickets", "conversations", "kb_articles", "kb_categories", "kb_folders", "attachments")
KIND_TABLE = {"ticket": "tickets", "conversation": "conversations", "kb_article": "kb_articles",
              "kb_category": "kb_categories", "kb_folder": "kb_folders", "attachment": "attachments"}
STATUSES = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
PRIORITIES = {1: "low", 2: "medium", 3: "high", 4: "urgent"}
TICKET_SOURCES = {1: "email", 2: "portal", 3: "phone", 7: "chat", 9: "feedback_widget", 10: "outbound_email"}
CONVERSATION_SOURCES = {0: "reply", 2: "note", 5: "tweet", 6: "survey_feedback", 7: "facebook",
                        8: "forwarded_email", 9: "phone", 11: "ecommerce"}
ARTICLE_STATUSES = {1: "draft", 2: "published"}
FOLDER_VISIBILITY = {1: "all_users", 2: "logged_in_users", 3: "agents", 4: "selected_companies", 5: "bots",
                     6: "selected_contact_segments", 7: "selected_company_segments"}

Tables = dict[str, list[dict[str, Any]]]


def normalize_messages(topic: str, messages: Iterable[Message]) -> tuple[Tables, list[DeadLetter]]:
    """Messages -> rows per table (TABLES) and dead letters; KB articles get folder/category names from the batch."""
    tables: Tables = {name: [] for name in TABLES}
    dead: list[DeadLetter] = []
    for msg in messages:
        try:
            parsed = decode_json(msg.value, "a record envelope")
        except f.Invalid as exc:
            dead.append(DeadLetter.of(str(exc), topic, msg.partition, msg.offset, None, msg.value))
            continue
        batch = isinstance(parsed, list)
        for i, obj in enumerate(parsed if batch else (parsed,)):
            index = i if batch else None
            raw_value = element_bytes(obj) if batch else msg.value
            try:
                rows, rejects = normalize_record(obj)
            except f.Invalid as exc:
                raw = _dlq_value(obj, raw_value)
                dead.append(DeadLetter.of(str(exc), topic, msg.partition, msg.offset, index, raw))
                continue
            for table, row in rows:
                tables[table].append(row)
            for reason, part in rejects:
                dead.append(DeadLetter.of(reason, topic, msg.partition, msg.offset, index,
                                          orjson.dumps(f.scrub(part))))
    _fill_kb_names(tables)
    return tables, dead


def normalize_record(obj: Any) -> tuple[list[tuple[str, dict[str, Any]]], Rejects]:
    """One envelope -> its rows (a ticket or conversation brings its attachments) and the parts rejected."""
    raw = _envelope(obj)
    rec, kind = raw.record, raw.kind
    base = {"tenant": raw.tenant, "platform": raw.platform, "domain": raw.domain, "job_id": raw.job_id}
    model, build = BUILDERS[kind]
    try:
        row = _row(model, base, build(rec))
    except f.Invalid as exc:
        rid = rec.get("id")
        raise f.Invalid(f"{kind} {rid}: {exc}" if type(rid) in (int, str) else f"{kind} record: {exc}") from None
    rows = [(KIND_TABLE[kind], row)]
    rejects: Rejects = []
    if kind in ("ticket", "conversation"):
        ticket_id = row["source_id"] if kind == "ticket" else row["ticket_id"]
        good, rejects = embedded_attachments(rec, kind, row["source_id"], ticket_id, row["updated_at"])
        for item, values in good:
            try:
                rows.append(("attachments", _row(Attachment, base, values)))
            except f.Invalid as exc:
                rejects.append((f"{kind} {row['source_id']} attachment {values['source_id']}: {exc}", item))
    return rows, rejects


def _envelope(obj: Any) -> RawRecord:
    if not isinstance(obj, dict):
        raise f.Invalid(f"JSON {type(obj).__name__} is not a record envelope object")
    kind = obj.get("kind")
    if isinstance(kind, str) and kind not in KIND_TABLE:
        raise f.Invalid(f"unknown kind {kind!r} (expected one of {', '.join(KIND_TABLE)})")
    try:
        return RawRecord.model_validate(obj)
    except ValidationError as exc:
        raise f.Invalid(_reason(exc)) from None


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors(include_url=False))


def _row(model: type[BaseModel], base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    try:
        return model.model_validate(base | values).model_dump()
    except ValidationError as exc:
        raise f.Invalid(_reason(exc)) from None


def _dlq_value(obj: Any, raw: bytes | None) -> bytes | None:
    """The rejected bytes as they came, unless they carry a credential: a dead letter must not copy it."""
    try:
        return orjson.dumps(f.scrub(obj)) if obj is not None and f.has_secret(obj) else raw
    except (RecursionError, TypeError):  # nested too deeply to walk or write back: DeadLetter.of redacts the text
        return raw


def _texts(html: Any, plain: Any, what: str) -> HtmlText:
    """Our conversion of the HTML first, the platform's `*_text` only when there is no HTML.

    One converter gives every platform the same text, and only the HTML still shows which part is quoted
    history (Gmail's gmail_quote, Outlook's divRplyFwdMsg, blockquote); `*_text` has lost that structure.
    """
    source = f.text(html, what)
    if source and source.strip():
        return html_to_texts(source)
    text = normalize_text(f.text(plain, f"{what}_text"))
    return HtmlText(text, strip_quoted_text(text))


def _ticket(rec: dict[str, Any]) -> dict[str, Any]:
    source_id = f.ident(rec.get("id"), "id")
    texts = _texts(rec.get("description"), rec.get("description_text"), "description")
    status = f.code_name(rec.get("status"), STATUSES, "status")
    if status is None:
        raise f.Invalid("missing status")
    return {
        "source_id": source_id, "subject": f.text(rec.get("subject"), "subject") or "",
        "description_text": texts.full, "description_stripped": texts.stripped, "status": status,
        "priority": f.code_name(rec.get("priority"), PRIORITIES, "priority"),
        "source": f.code_name(rec.get("source"), TICKET_SOURCES, "source"), "type": f.text(rec.get("type"), "type"),
        "tags": f.tags(rec.get("tags")), "requester_id": f.opt_ident(rec.get("requester_id"), "requester_id"),
        "responder_id": f.opt_ident(rec.get("responder_id"), "responder_id"),
        "group_id": f.opt_ident(rec.get("group_id"), "group_id"),
        "company_id": f.opt_ident(rec.get("company_id"), "company_id"),
        "spam": f.flag(rec.get("spam"), "spam"), "is_escalated": f.flag(rec.get("is_escalated"), "is_escalated"),
        "custom_fields": f.custom_fields(rec.get("custom_fields")),
        **_times(rec, created=True, due=True),
    }


def _conversation(rec: dict[str, Any]) -> dict[str, Any]:
    source_id = f.ident(rec.get("id"), "id")
    texts = _texts(rec.get("body"), rec.get("body_text"), "body")
    incoming, private = f.flag(rec.get("incoming"), "incoming"), f.flag(rec.get("private"), "private")
    return {
        "source_id": source_id, "ticket_id": f.ident(rec.get("ticket_id"), "ticket_id"),
        "body_text": texts.full, "body_stripped": texts.stripped, "incoming": incoming, "private": private,
        "author_role": "customer" if incoming else "note" if private else "agent",
        "user_id": f.opt_ident(rec.get("user_id"), "user_id"),
        "source": f.code_name(rec.get("source"), CONVERSATION_SOURCES, "source"),
        **_times(rec, created=True),
    }


def _kb_category(rec: dict[str, Any]) -> dict[str, Any]:
    source_id = f.ident(rec.get("id"), "id")
    return {"source_id": source_id, "name": f.text(rec.get("name"), "name") or "",
            "description": normalize_text(f.text(rec.get("description"), "description")) or None,
            **_times(rec)}


def _kb_folder(rec: dict[str, Any]) -> dict[str, Any]:
    source_id = f.ident(rec.get("id"), "id")
    return {"source_id": source_id, "name": f.text(rec.get("name"), "name") or "",
            "description": normalize_text(f.text(rec.get("description"), "description")) or None,
            "category_id": f.opt_ident(rec.get("category_id"), "category_id"),
            "visibility": f.code_name(rec.get("visibility"), FOLDER_VISIBILITY, "visibility"),
            **_times(rec)}


def _kb_article(rec: dict[str, Any]) -> dict[str, Any]:
    source_id = f.ident(rec.get("id"), "id")
    return {"source_id": source_id, "title": f.text(rec.get("title"), "title") or "",
            "description_text": _texts(rec.get("description"), rec.get("description_text"), "description").full,
            "status": f.code_name(rec.get("status"), ARTICLE_STATUSES, "status"),
            "folder_id": f.opt_ident(rec.get("folder_id"), "folder_id"),
            "folder_name": f.text(rec.get("folder_name"), "folder_name"),
            "category_id": f.opt_ident(rec.get("category_id"), "category_id"),
            "category_name": f.text(rec.get("category_name"), "category_name"),
            "tags": f.tags(rec.get("tags")), **_times(rec)}


def _times(rec: dict[str, Any], created: bool = False, due: bool = False) -> dict[str, Any]:
    read = f.timestamp if created else f.opt_timestamp
    times = {"updated_at": f.timestamp(rec.get("updated_at"), "updated_at"),
             "created_at": read(rec.get("created_at"), "created_at")}
    if due:
        times["due_by"] = f.opt_timestamp(rec.get("due_by"), "due_by")
        times["fr_due_by"] = f.opt_timestamp(rec.get("fr_due_by"), "fr_due_by")
    return times


def _fill_kb_names(tables: Tables) -> None:
    """Articles seen in the same batch as their folder and category get those names."""
    folders = {(r["tenant"], r["domain"], r["source_id"]): r["name"] for r in tables["kb_folders"]}
    categories = {(r["tenant"], r["domain"], r["source_id"]): r["name"] for r in tables["kb_categories"]}
    for row in tables["kb_articles"]:
        scope = (row["tenant"], row["domain"])
        if row["folder_name"] is None and row["folder_id"] is not None:
            row["folder_name"] = folders.get((*scope, row["folder_id"]))
        if row["category_name"] is None and row["category_id"] is not None:
            row["category_name"] = categories.get((*scope, row["category_id"]))


BUILDERS: dict[str, tuple[type[BaseModel], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "ticket": (Ticket, _ticket), "conversation": (Conversation, _conversation),
    "kb_category": (KbCategory, _kb_category), "kb_folder": (KbFolder, _kb_folder),
    "kb_article": (KbArticle, _kb_article), "attachment": (Attachment, attachment_values),
}
