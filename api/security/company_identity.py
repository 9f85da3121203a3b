"""Proof of company identity for creating seed 000's jobs: a key counts only once the platform confirms it.

Before anything happens for a job request (no job row, no purge, no stored key) the key is checked by Freshdesk
itself: `GET /api/v2/agents/me` on the request's domain (FreshdeskClient.me). The first confirmed key binds the
company to that domain (`company_domains`); a request for the company from another domain is refused 403 unless
a Bearer token of that tenant with role iam_admin or system_admin comes with it, which binds that domain too.
Confirmed keys are stored as keyed hashes beside the earlier ones, so a key can be rotated while the old one keeps
working. A stored confirmed key needs no new call; fresh confirmations are also kept in-process for a short while,
keyed by the hash (never the key), so a burst of job creations does not call Freshdesk each time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog
from fastapi import Request

from api.errors import ApiError
from api.security.bearer import optional_principal
from api.security.company_keys import Credentials, key_hash
from pipeline.ingest.freshdesk.client import FreshdeskClient
from pipeline.ingest.freshdesk.errors import (
    FreshdeskAuthError,
    FreshdeskDomainError,
    FreshdeskError,
    FreshdeskUnavailable,
)
from pipeline.security import Principal, Role
from pipeline.settings import Settings
from pipeline.storage.queries import ingest as q
from pipeline.storage.store import Store

log = structlog.get_logger(__name__)
CACHE_TTL_S = 60.0
CACHE_MAX = 4096
ADMIN_ROLES = (Role.IAM_ADMIN, Role.SYSTEM_ADMIN)


@dataclass(frozen=True)
class ProvenCredentials:
    """Credentials whose key the platform confirmed for their domain, which is bound to their company."""

    creds: Credentials
    key_hash: str


class CompanyIdentity:
    """`await prove(request, creds)`: ProvenCredentials, or an ApiError (401/403/400/502/503) and nothing done."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self._confirmed: dict[tuple[str, str, str], float] = {}  # (key hash, platform, domain) -> expiry
        self._bind = asyncio.Lock()  # one api process: the first binding of a company happens once

    async def prove(self, request: Request, creds: Credentials) -> ProvenCredentials:
        admin = _admin_of(request, creds.company)
        await self._check_domain(creds, admin)  # refused before anyone asks Freshdesk anything
        digest = key_hash(self.settings.fernet_key(), creds.company, creds.api_key)
        if not await self._known(digest, creds):
            await self._ask_platform(creds)
            self._remember(digest, creds)
        async with self._bind:
            bound = await self._check_domain(creds, admin)
            if creds.domain not in bound:
                by = f"token:{admin.user_id}" if admin else "verified_key"
                await self.store.run(q.bind_domain, creds.company, creds.platform, creds.domain, by)
                log.info("company_domain_bound", tenant=creds.company, domain=creds.domain, by=by,
                         first=not bound)
            await self.store.run(q.remember_key, creds.company, creds.platform, creds.domain, digest)
        return ProvenCredentials(creds, digest)

    async def _check_domain(self, creds: Credentials, admin: Principal | None) -> list[str]:
        bound = await self.store.run(q.bound_domains, creds.company, creds.platform)
        if bound and creds.domain not in bound and admin is None:
            log.warning("company_domain_refused", tenant=creds.company, domain=creds.domain)
            raise ApiError(403, f"company {creds.company} collects from another {creds.platform} domain, not "
                                f"{creds.domain}: adding a domain needs Authorization: Bearer <token of tenant "
                                f"{creds.company} with role iam_admin or system_admin>", code="DOMAIN_NOT_BOUND",
                           details={"header": "X-Domain", "needs_roles": [r.value for r in ADMIN_ROLES]})
        return bound

    async def _known(self, digest: str, creds: Credentials) -> bool:
        expiry = self._confirmed.get((digest, creds.platform, creds.domain))
        if expiry is not None and expiry > time.monotonic():
            return True
        stored = await self.store.run(q.verified_keys, creds.company, creds.platform, creds.domain)
        return digest in stored

    def _remember(self, digest: str, creds: Credentials) -> None:
        now = time.monotonic()
        if len(self._confirmed) >= CACHE_MAX:
            self._confirmed = {k: v for k, v in self._confirmed.items() if v > now}
        self._confirmed[(digest, creds.platform, creds.domain)] = now + CACHE_TTL_S

    async def _ask_platform(self, creds: Credentials) -> None:
        # Few, quick retries: a person waits on this answer; the job's own calls retry for longer.
        client = FreshdeskClient(creds.domain, creds.api_key, base_url=self.settings.freshdesk_base_url,
                                 max_retries=2, timeout_s=10.0, connect_timeout_s=5.0, backoff_s=0.2,
                                 backoff_max_s=1.0)
        try:
            async with client:
                await client.me()
        except FreshdeskError as exc:
            log.warning("company_key_not_confirmed", tenant=creds.company, domain=creds.domain,
                        error=type(exc).__name__, status=exc.status)
            raise _refusal(creds, exc) from None
        log.info("company_key_confirmed", tenant=creds.company, domain=creds.domain)


def _refusal(creds: Credentials, exc: FreshdeskError) -> ApiError:
    domain = creds.domain
    if isinstance(exc, FreshdeskAuthError):
        return ApiError(401, f"Freshdesk rejected the API key in X-API-Key for {domain} (HTTP {exc.status}): send "
                             "the API key of an agent of that account", code="INVALID_API_KEY",
                        details={"header": "X-API-Key", "domain": domain})
    if isinstance(exc, FreshdeskDomainError):
        return ApiError(400, f"no Freshdesk account answers at {domain}: check X-Domain", code="INVALID_DOMAIN",
                        details={"header": "X-Domain", "domain": domain})
    if isinstance(exc, FreshdeskUnavailable):
        return ApiError(503, f"could not reach Freshdesk at {domain} to verify X-API-Key; nothing was done, try "
                             "again shortly", code="PLATFORM_UNAVAILABLE", headers={"Retry-After": "5"},
                        details={"domain": domain})
    return ApiError(502, f"Freshdesk answered the key check for {domain} with HTTP {exc.status}; nothing was done",
                    code="PLATFORM_ERROR", details={"domain": domain})


def _admin_of(request: Request, company: str) -> Principal | None:
    """The Bearer token's principal when it is an iam_admin or system_admin of this company's tenant."""
    principal = optional_principal(request)
    if principal is None or principal.tenant_id != company or not principal.has(*ADMIN_ROLES):
        return None
    return principal
