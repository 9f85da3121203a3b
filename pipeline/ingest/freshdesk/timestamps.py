"""Freshdesk's timestamps: UTC, whole seconds, a Z suffix (`2025-06-22T14:30:52Z`)."""

from __future__ import annotations

from datetime import UTC, datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_iso(moment: datetime) -> str:
    """A timezone-aware datetime as Freshdesk writes it; naive ones are refused rather than guessed."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a timezone (UTC on the wire)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    """An ISO 8601 timestamp or date from the API or a query string; no offset means UTC."""
    moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
