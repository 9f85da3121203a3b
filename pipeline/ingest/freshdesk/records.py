"""What the Freshdesk client hands back besides raw records: cursors, threads, downloads and its counters."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from pipeline.ingest.freshdesk import timestamps

KbKind = Literal["kb_category", "kb_folder", "kb_article"]
KbItem = tuple[KbKind, dict[str, Any]]


@dataclass(frozen=True)
class TicketCursor:
    """Where a ticket listing stands: the last updated_at handed out and the ids handed out at that instant.

    Resuming lists `updated_since=updated_at` (Freshdesk's filter includes it) and skips those ids, so nothing is
    missed and nothing repeats; a ticket updated again later has a new updated_at and comes back, as it should.
    """

    updated_at: datetime
    ids: frozenset[int] = frozenset()

    def seen(self, ticket_id: int, updated_at: datetime) -> bool:
        return updated_at == self.updated_at and ticket_id in self.ids

    def advance(self, ticket_id: int, updated_at: datetime) -> TicketCursor:
        if updated_at > self.updated_at:
            return TicketCursor(updated_at, frozenset((ticket_id,)))
        if updated_at == self.updated_at:
            return TicketCursor(updated_at, self.ids | {ticket_id})
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"updated_at": timestamps.to_iso(self.updated_at), "ids": sorted(self.ids)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TicketCursor:
        return cls(timestamps.parse(data["updated_at"]), frozenset(int(i) for i in data.get("ids", ())))


@dataclass(frozen=True)
class TicketThread:
    """A ticket with all its conversations, and the cursor to resume after it."""

    ticket: dict[str, Any]
    conversations: list[dict[str, Any]]
    cursor: TicketCursor


@dataclass(frozen=True)
class AttachmentDownload:
    """An attachment's bytes, or why not all of them: `oversize` (declared over the cap, nothing read) or
    `truncated` (larger than declared or undeclared: the first max_bytes kept)."""

    content: bytes
    content_type: str | None
    declared_size: int | None
    oversize: bool = False
    truncated: bool = False


@dataclass
class ClientStats:
    """What one client spent; a job reports it."""

    requests: int = 0  # HTTP requests to the API, retries included
    by_endpoint: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    errors: int = 0  # failed attempts: 5xx, timeouts, dropped connections
    throttled: int = 0  # 429 answers
    unexpected_throttles: int = 0  # 429s the budget did not see coming (counted as retries)
    credits: int = 0  # X-RateLimit-Used-CurrentRequest, summed
    restarts: int = 0  # listings restarted from the cursor at the page cap
    duplicates: int = 0  # overlap skipped after a restart or resume
    skipped_conversation_calls: int = 0  # tickets never updated since creation: no conversations to ask for
    vanished: int = 0  # tickets deleted before their conversations were read
    downloads: int = 0
    download_bytes: int = 0
    oversize: int = 0
    truncated: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"by_endpoint": dict(self.by_endpoint)}
