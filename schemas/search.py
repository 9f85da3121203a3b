"""`tickets.embed_requests`: what the api asks the worker to (re)embed for `POST /ingest/sync-summaries`."""

from __future__ import annotations

from pydantic import BaseModel


class EmbedObject(BaseModel):
    tenant: str
    key: str
    object_type: str
    updated_at: str  # ISO 8601: the object version the vector is for
    embed_text: str  # title, summary and text as the embedder reads them (pipeline/search/vectors.py)


class EmbedRequest(BaseModel):
    """api -> worker: objects to (re)embed; `force` re-embeds even an unchanged text."""

    force: bool = False
    objects: list[EmbedObject]
