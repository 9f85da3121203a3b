"""Query-string redaction the way OpenTelemetry's HTTP conventions scrub `url.query`.

OTel keeps every key and replaces the *value* of sensitive keys with the literal `REDACTED`
(semconv `url.query`: AWSAccessKeyId, Signature, sig, X-Goog-Signature by default). We keep that shape and
widen the list to the credentials gateways commonly see in URLs. Everything else is left byte for byte.
OAuth's `code` is not on the list: it is single-use and short-lived, and `code=` is far more often a
country or product code that analytics needs.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

REDACTED = "REDACTED"

SENSITIVE_KEYS: frozenset[str] = frozenset(
    k.lower()
    for k in (
        # OpenTelemetry's default list
        "AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature",
        # credentials and bearer material
        "api_key", "apikey", "api-key", "key", "token", "access_token", "refresh_token", "id_token",
        "authorization", "password", "passwd", "pwd", "secret", "client_secret", "sessionid", "jwt",
        # signed URLs (AWS SigV4, GCS)
        "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Credential",
    )
)


def _is_sensitive(raw_key: str) -> bool:
    key = unquote_plus(raw_key).strip().lower()
    return key in SENSITIVE_KEYS


def redact_query(query: str) -> str:
    """Replace sensitive parameter values with REDACTED; keep order, separators and other bytes."""
    if "=" not in query:
        return query
    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        key, sep, value = part.partition("=")
        if sep and value and _is_sensitive(key):
            parts[i] = f"{key}={REDACTED}"
            changed = True
    return "&".join(parts) if changed else query
