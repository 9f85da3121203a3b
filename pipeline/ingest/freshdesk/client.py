"""An async Freshdesk API v2 client for ingest jobs: paced by the account's shared budget, retried, resumable.

With a base URL override (STREAMDESK_FRESHDESK_BASE_URL, e.g. the simulator on loopback) requests go to that
address with `Host: {domain}`, and `Link` URLs are rebased onto it: only their path and query are followed, so
credentials never leave for a host we were not configured to talk to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import structlog
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from pipeline.ingest.freshdesk import timestamps
from pipeline.ingest.freshdesk.api import TOP_LEVEL, credits_for, endpoint_label
from pipeline.ingest.freshdesk.errors import (
    FreshdeskAttachmentError,
    FreshdeskAuthError,
    FreshdeskDomainError,
    FreshdeskNotFound,
    FreshdeskPageCapError,
    FreshdeskRequestError,
    FreshdeskUnavailable,
)
from pipeline.ingest.freshdesk.ratelimit import PRIORITY_RANK, RateBudget, budget_for
from pipeline.ingest.freshdesk.records import AttachmentDownload, ClientStats, KbItem, TicketCursor

log = structlog.get_logger(__name__)
MAX_EXPECTED_WAITS = 50  # 429s we saw coming only wait; this bounds a server that never lets us through


class _Retryable(Exception):
    """A failed attempt worth another try; carries a reason only (never the request, which holds the key)."""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class FreshdeskClient:
    """One account's API: `iter_tickets`, `iter_conversations`, `iter_kb`, `download_attachment`; use `async with`."""

    def __init__(self, domain: str, api_key: SecretStr, *, base_url: str | None = None,
                 budget: RateBudget | None = None, max_retries: int = 5, timeout_s: float = 30.0,
                 connect_timeout_s: float = 10.0, max_attachment_bytes: int = 20 * 1024 * 1024,
                 backoff_s: float = 0.5, backoff_max_s: float = 30.0, max_page: int = 300, per_page: int = 100,
                 transport: httpx.AsyncBaseTransport | None = None,
                 event_hooks: dict[str, list[Any]] | None = None,
                 priority: Callable[[], str] | None = None) -> None:
        self.domain = domain.strip().lower()
        self.budget = budget or budget_for(self.domain)
        self.stats = ClientStats()
        self.cursor: TicketCursor | None = None
        self.max_attachment_bytes, self._max_retries, self._max_page = max_attachment_bytes, max_retries, max_page
        self.per_page = per_page  # Freshdesk's maximum; every listing's default
        self._priority = priority  # read at every request: a job's priority_change applies to its next call
        self._backoff = (backoff_s, backoff_max_s)
        self._api_key = api_key  # stays a SecretStr; the header is built per request and never kept
        self._headers = {"Host": self.domain} if base_url else {}
        self._http = httpx.AsyncClient(
            base_url=(base_url or f"https://{self.domain}").rstrip("/"), transport=transport, event_hooks=event_hooks,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s), follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "streamdesk-freshdesk/0.1"})

    def __repr__(self) -> str:
        return f"FreshdeskClient(domain={self.domain!r}, base_url={str(self._http.base_url)!r})"

    async def __aenter__(self) -> FreshdeskClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def me(self) -> dict[str, Any]:
        """The agent the key belongs to (`GET /api/v2/agents/me`): proof the key works for this account.

        FreshdeskAuthError (never retried) when the account refuses the key, FreshdeskDomainError when no account
        answers at the domain, FreshdeskUnavailable when it cannot be reached.
        """
        body = (await self._get("/api/v2/agents/me")).json()
        return body if isinstance(body, dict) else {}

    async def iter_tickets(self, updated_since: datetime | None = None, per_page: int | None = None, *,
                           cursor: TicketCursor | None = None,
                           include_description: bool = True) -> AsyncIterator[dict[str, Any]]:
        """Tickets updated at or after `updated_since` (all of them when None), oldest update first, each once.

        Follows `Link: rel="next"`; at the page cap it lists again from the last updated_at handed out. `cursor`
        resumes a listing; `self.cursor` always says where this one stands.
        """
        self.cursor = cursor or TicketCursor(updated_since or timestamps.EPOCH)
        window_start, page = self.cursor.updated_at, 1
        url: str | None = "/api/v2/tickets"
        per_page = per_page or self.per_page
        params: dict[str, Any] | None = self._ticket_params(window_start, per_page, include_description)
        while url:
            batch, next_url, capped = await self._ticket_page(url, params)
            for ticket in batch:
                updated = timestamps.parse(ticket["updated_at"])
                if self.cursor.seen(ticket["id"], updated):
                    self.stats.duplicates += 1
                    continue
                self.cursor = self.cursor.advance(ticket["id"], updated)
                yield ticket
            if next_url is None or (not capped and page < self._max_page):
                url, params, page = next_url, None, page + 1
                continue
            window_start = self._restart_point(window_start, page)
            url, params, page = "/api/v2/tickets", self._ticket_params(window_start, per_page,
                                                                      include_description), 1

    async def newest_update(self, updated_since: datetime | None = None) -> datetime | None:
        """The latest `updated_at` among tickets updated at or after `updated_since` (one request, one credit):
        where an oldest-first listing will end. None when there is no such ticket."""
        params = self._ticket_params(updated_since or timestamps.EPOCH, 1, False) | {"order_type": "desc"}
        tickets = (await self._get("/api/v2/tickets", params)).json()
        return timestamps.parse(tickets[0]["updated_at"]) if isinstance(tickets, list) and tickets else None

    async def _ticket_page(self, url: str, params: dict[str, Any] | None) -> tuple[list[dict[str, Any]], str | None,
                                                                                   bool]:
        """(tickets, next link, capped): the server's page-cap refusal is an empty page with more to come."""
        try:
            response = await self._get(url, params)
        except FreshdeskRequestError as exc:
            if not exc.is_page_cap:
                raise
            return [], url, True
        return response.json(), self._next(response), False

    def _restart_point(self, window_start: datetime, page: int) -> datetime:
        if self.cursor is None or self.cursor.updated_at <= window_start:
            raise FreshdeskPageCapError(
                f"{self.domain}: more tickets share updated_at {timestamps.to_iso(window_start)} than {page} pages "
                "hold; cannot list past Freshdesk's page cap", domain=self.domain)
        self.stats.restarts += 1
        log.info("freshdesk_listing_restarted", domain=self.domain, pages=page,
                 updated_since=timestamps.to_iso(self.cursor.updated_at))
        return self.cursor.updated_at

    @staticmethod
    def _ticket_params(since: datetime, per_page: int, include_description: bool) -> dict[str, Any]:
        params = {"updated_since": timestamps.to_iso(since), "order_by": "updated_at", "order_type": "asc",
                  "per_page": per_page}
        return params | ({"include": "description"} if include_description else {})

    async def iter_conversations(self, ticket_id: int, per_page: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """A ticket's replies and notes, oldest first; FreshdeskNotFound if the ticket is gone."""
        async for conversation in self._paginate(f"/api/v2/tickets/{int(ticket_id)}/conversations", per_page):
            yield conversation

    async def iter_kb(self, per_page: int | None = None) -> AsyncIterator[KbItem]:
        """The knowledge base, depth first: each category, then its folders, each followed by its articles.

        Freshdesk's article records carry folder and category ids only; the walk knows the names, so each
        article gets `folder_name` and `category_name` (as Airbyte's connector joins them), whichever batch
        it travels in.
        """
        async for category in self._paginate("/api/v2/solutions/categories", per_page):
            yield "kb_category", category
            async for folder in self._paginate(f"/api/v2/solutions/categories/{int(category['id'])}/folders",
                                               per_page):
                yield "kb_folder", folder
                async for article in self._paginate(f"/api/v2/solutions/folders/{int(folder['id'])}/articles",
                                                    per_page):
                    yield "kb_article", {"folder_name": folder.get("name"), "category_name": category.get("name"),
                                         "category_id": category.get("id"), **article}

    async def _paginate(self, path: str, per_page: int | None) -> AsyncIterator[dict[str, Any]]:
        url: str | None = path
        params: dict[str, Any] | None = {"per_page": per_page or self.per_page}
        while url:
            response = await self._get(url, params)
            for record in response.json():
                yield record
            url, params = self._next(response), None

    def _next(self, response: httpx.Response) -> str | None:
        """The next page's path and query from `Link`, to be requested on our own base URL."""
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        parts = urlsplit(link)
        return f"{parts.path}?{parts.query}" if parts.query else parts.path

    async def download_attachment(self, url: str, max_bytes: int | None = None) -> AttachmentDownload:
        """An attachment's bytes, streamed and stopped at the cap (pre-signed URL: no API key, no API credits)."""
        cap = self.max_attachment_bytes if max_bytes is None else max_bytes
        try:
            async for attempt in self._retrying("download"):
                with attempt:
                    return await self._download_once(url, cap)
        except _Retryable as exc:
            raise FreshdeskUnavailable(f"{self.domain}: attachment download failed after retries ({exc})",
                                       domain=self.domain) from None
        raise AssertionError("unreachable")

    async def _download_once(self, url: str, cap: int) -> AttachmentDownload:
        self.stats.downloads += 1
        where = urlsplit(url).path  # the query string is a signature: keep it out of messages
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code >= 500:
                    raise _Retryable(f"HTTP {response.status_code}")
                if response.status_code != 200:
                    raise FreshdeskAttachmentError(f"{self.domain}: attachment {where} refused (HTTP "
                                                   f"{response.status_code})", domain=self.domain,
                                                   status=response.status_code)
                return await self._read_capped(response, cap)
        except httpx.TransportError as exc:
            self.stats.errors += 1
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None

    async def _read_capped(self, response: httpx.Response, cap: int) -> AttachmentDownload:
        declared, kind = _int(response.headers.get("content-length")), response.headers.get("content-type")
        if declared is not None and declared > cap:
            self.stats.oversize += 1
            return AttachmentDownload(b"", kind, declared, oversize=True)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            if len(body) + len(chunk) > cap:
                body += chunk[: cap - len(body)]
                self.stats.truncated += 1
                self.stats.download_bytes += len(body)
                return AttachmentDownload(bytes(body), kind, declared, truncated=True)
            body += chunk
        self.stats.download_bytes += len(body)
        return AttachmentDownload(bytes(body), kind, declared)

    def _retrying(self, endpoint: str) -> AsyncRetrying:
        def note(state: RetryCallState) -> None:
            self.stats.retries += 1
            log.warning("freshdesk_retry", domain=self.domain, endpoint=endpoint, attempt=state.attempt_number,
                        reason=str(state.outcome.exception()) if state.outcome else None,
                        wait_s=round(state.next_action.sleep, 3) if state.next_action else None)

        return AsyncRetrying(stop=stop_after_attempt(self._max_retries + 1), reraise=True, before_sleep=note,
                             wait=wait_random_exponential(multiplier=self._backoff[0], max=self._backoff[1]),
                             retry=retry_if_exception_type(_Retryable))

    async def _get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """GET with pacing, retries and error mapping; returns a 2xx response."""
        path = urlsplit(url).path
        include = (params or {}).get("include") or next(iter(parse_qs(urlsplit(url).query).get("include", [])), None)
        cost, endpoint = credits_for(path, include), endpoint_label("GET", path)
        try:
            async for attempt in self._retrying(endpoint):
                with attempt:
                    return await self._attempt(url, params, cost, endpoint)
        except _Retryable as exc:
            raise FreshdeskUnavailable(f"{self.domain}: {endpoint} failed after {self._max_retries + 1} attempts "
                                       f"({exc})", domain=self.domain) from None
        raise AssertionError("unreachable")

    async def _attempt(self, url: str, params: dict[str, Any] | None, cost: int, endpoint: str) -> httpx.Response:
        for _ in range(MAX_EXPECTED_WAITS):
            rank = PRIORITY_RANK.get(self._priority(), PRIORITY_RANK["normal"]) if self._priority else \
                PRIORITY_RANK["normal"]
            await self.budget.acquire(cost, rank)
            expected = self.budget.expects_throttle(cost)
            response = await self._send(url, params, cost, endpoint)
            if response.status_code != 429:
                return self._check(response, endpoint)
            retry_after = _int(response.headers.get("retry-after"))
            self.budget.throttled(self.budget.window_s if retry_after is None else retry_after)
            self.stats.throttled += 1
            log.warning("freshdesk_throttled", domain=self.domain, endpoint=endpoint, retry_after_s=retry_after,
                        expected=expected)
            if not expected:
                self.stats.unexpected_throttles += 1
                raise _Retryable("HTTP 429 with budget to spare")
        raise _Retryable(f"HTTP 429 {MAX_EXPECTED_WAITS} times in a row")

    async def _send(self, url: str, params: dict[str, Any] | None, cost: int, endpoint: str) -> httpx.Response:
        self.stats.requests += 1
        self.stats.by_endpoint[endpoint] += 1
        response: httpx.Response | None = None
        try:
            auth = httpx.BasicAuth(self._api_key.get_secret_value(), "X")
            response = await self._http.get(url, params=params, auth=auth, headers=self._headers)
        except httpx.TransportError as exc:
            self.stats.errors += 1
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        finally:
            h = response.headers if response is not None else httpx.Headers()
            used = _int(h.get("x-ratelimit-used-currentrequest"))
            self.budget.settle(cost, _int(h.get("x-ratelimit-total")), _int(h.get("x-ratelimit-remaining")), used)
            self.stats.credits += used or 0
        return response

    def _check(self, response: httpx.Response, endpoint: str) -> httpx.Response:
        status = response.status_code
        if status < 300:
            return response
        if status >= 500:
            self.stats.errors += 1
            raise _Retryable(f"HTTP {status}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if status in (401, 403):
            raise FreshdeskAuthError(f"Freshdesk rejected the API key for {self.domain} (HTTP {status} "
                                     f"{body.get('code', 'refused')}): check the key and its agent's access",
                                     domain=self.domain, status=status)
        top_level = endpoint.removeprefix("GET ") in TOP_LEVEL
        if top_level and (status == 404 or 300 <= status < 400):
            raise FreshdeskDomainError(f"no Freshdesk account answers at {self.domain} (HTTP {status} on "
                                       f"{endpoint})", domain=self.domain, status=status)
        if status == 404:
            raise FreshdeskNotFound(f"{self.domain}: {endpoint} not found", domain=self.domain, status=404)
        raise FreshdeskRequestError(f"{self.domain}: {endpoint} refused (HTTP {status}): {body.get('errors', '')}",
                                    domain=self.domain, status=status, errors=body.get("errors") or [])
