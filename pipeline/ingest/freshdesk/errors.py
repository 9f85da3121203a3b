"""What can go wrong talking to Freshdesk; messages name the account and the endpoint, never the API key."""

from __future__ import annotations

from typing import Any


class FreshdeskError(Exception):
    """Base of every Freshdesk connector error."""

    def __init__(self, message: str, *, domain: str, status: int | None = None) -> None:
        super().__init__(message)
        self.domain, self.status = domain, status


class FreshdeskAuthError(FreshdeskError):
    """401/403: the API key was rejected (wrong, revoked, or its agent lacks access)."""


class FreshdeskDomainError(FreshdeskError):
    """No Freshdesk account answers at this domain (404 or a redirect on a top-level endpoint)."""


class FreshdeskNotFound(FreshdeskError):
    """One record is gone (e.g. a ticket deleted between listing and reading its conversations)."""


class FreshdeskRequestError(FreshdeskError):
    """Any other 4xx: Freshdesk refused the request; `errors` holds its validation details."""

    def __init__(self, message: str, *, domain: str, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(message, domain=domain, status=status)
        self.errors = errors

    @property
    def is_page_cap(self) -> bool:
        """Freshdesk's answer to a page past its limit (300): a 400 naming the `page` field."""
        return self.status == 400 and any(e.get("field") == "page" for e in self.errors)


class FreshdeskUnavailable(FreshdeskError):
    """Retries exhausted: 5xx answers, timeouts, dropped connections or repeated unexpected 429s."""


class FreshdeskPageCapError(FreshdeskError):
    """More tickets share one updated_at than fit below the page cap, so restarting cannot make progress."""


class FreshdeskAttachmentError(FreshdeskError):
    """An attachment URL was refused (expired or revoked); list the ticket again for a fresh one."""
