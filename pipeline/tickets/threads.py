"""A batch's tickets with their own conversations and attachments -> one integrated (searchable) object each.

The ingest job publishes a thread whole, so a batch holds every conversation of each ticket in it; KB
articles become objects of their own. Conversations or attachments that arrive without their ticket (a
producer sending them alone) are stored, and folded in when their ticket next comes by.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pipeline.tickets.summarize import integrate, integrate_article
from schemas.tickets import Attachment, Conversation, KbArticle, Ticket


def integrated_objects(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    convs: dict[str, list[Conversation]] = defaultdict(list)
    files: dict[str, list[Attachment]] = defaultdict(list)
    for row in tables.get("conversations", ()):
        c = Conversation.model_validate(row)
        convs[c.ticket_key].append(c)
    for row in tables.get("attachments", ()):
        a = Attachment.model_validate(row)
        if a.ticket_id is not None:
            files[f"{a.tenant}:{a.platform}:ticket:{a.ticket_id}"].append(a)
    out = []
    for row in tables.get("tickets", ()):
        t = Ticket.model_validate(row)
        out.append(integrate(t, convs.get(t.key, []), files.get(t.key, [])).model_dump())
    out += [integrate_article(KbArticle.model_validate(r)).model_dump() for r in tables.get("kb_articles", ())]
    return out
