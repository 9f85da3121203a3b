"""Seed 000's company credentials: the four headers for creating jobs; company + key (or a token) for the rest.

Credentials come from headers only (the seed's rule). Creating a job needs a key the platform confirms
(company_identity.py). Reads, control, metrics, search and sync-summaries need `X-Company-ID` plus either one of
that company's confirmed keys in `X-API-Key` — compared with the keyed hashes stored when the platform confirmed
them — or a Bearer token of that tenant (docs/decisions.md "Authorisation"). The key is never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.requests import HTTPConnection, Request

from api.errors import ApiError
from api.security.bearer import optional_principal
from pipeline.storage.queries import ingest as q

PLATFORMS = ("freshdesk",)
DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.freshdesk\.com$")
CREDENTIAL_FIELDS = {"api_key": "X-API-Key", "apikey": "X-API-Key", "company_id": "X-Company-ID",
                     "company": "X-Company-ID", "domain": "X-Domain", "platform": "X-Platform"}
HEADERS_NEEDED = "X-Company-ID, X-Platform, X-Domain, X-API-Key"


@dataclass(frozen=True)
class Credentials:
    company: str
    platform: str
    domain: str
    api_key: SecretStr


def key_hash(secret: str, company: str, key: SecretStr) -> str:
    """HMAC under the server's secret: a stolen database does not let anyone test guesses offline."""
    return hmac.new(secret.encode(), f"{company}\x1f{key.get_secret_value()}".encode(), hashlib.sha256).hexdigest()


def credentials(request: Request) -> Credentials:
    h = request.headers
    missing = [n for n in ("X-Company-ID", "X-Platform", "X-Domain", "X-API-Key") if not h.get(n, "").strip()]
    if missing:
        raise ApiError(401, f"missing header(s) {', '.join(missing)}: credentials travel only in the headers "
                            f"{HEADERS_NEEDED}", code="MISSING_CREDENTIALS", details={"missing_headers": missing})
    platform = h["X-Platform"].strip().lower()
    if platform not in PLATFORMS:
        raise ApiError(400, f"unknown platform {platform!r}: supported are {', '.join(PLATFORMS)}",
                       code="UNKNOWN_PLATFORM")
    domain = h["X-Domain"].strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not DOMAIN.fullmatch(domain):
        raise ApiError(400, f"X-Domain {h['X-Domain'][:100]!r} is not a Freshdesk domain such as "
                            "company.freshdesk.com", code="INVALID_DOMAIN")
    return Credentials(h["X-Company-ID"].strip(), platform, domain, SecretStr(h["X-API-Key"].strip()))


def company_of(conn: HTTPConnection) -> str:
    """The company a read or control request may act for; 401 naming the headers when it proves nothing."""
    company = conn.headers.get("X-Company-ID", "").strip()
    principal = optional_principal(conn)
    if principal is not None and (not company or company == principal.tenant_id):
        return principal.tenant_id
    key = conn.headers.get("X-API-Key", "").strip()
    if company and key and _known_key(conn, company, SecretStr(key)):
        return company
    raise ApiError(401, "send X-Company-ID with that company's X-API-Key (a key Freshdesk confirmed when one of "
                        "its jobs was created), "
                        "or Authorization: Bearer <token of that tenant>", code="MISSING_CREDENTIALS",
                   details={"headers": ["X-Company-ID", "X-API-Key"], "or": "Authorization: Bearer"})


def _known_key(conn: HTTPConnection, company: str, key: SecretStr) -> bool:
    digest = key_hash(conn.app.state.settings.fernet_key(), company, key)
    hashes = conn.app.state.services.store.call(q.verified_keys, company)  # unconfirmed keys open nothing
    return any(hmac.compare_digest(digest, h) for h in hashes)


def refuse_body_credentials(body: dict) -> None:
    """The seed's pitfall: credentials in the body are refused, naming the header each belongs in."""
    found = {k: CREDENTIAL_FIELDS[k.lower()] for k in body if k.lower() in CREDENTIAL_FIELDS}
    if found:
        where = ", ".join(f"{k} -> {v}" for k, v in found.items())
        raise ApiError(400, f"credentials belong in headers, not the body ({where}); the body carries only "
                            "collection options", code="CREDENTIALS_IN_BODY", details={"move_to_headers": found})
