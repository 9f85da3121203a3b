"""Redaction the way OpenTelemetry's HTTP conventions scrub `url.query`: the key stays, a secret value is REDACTED.

Which keys are secret, precisely (`is_sensitive_key`): the key is percent-decoded and trimmed; bracketed and dotted
keys (`user[password]`, `a[b][token]`, `user.password`, `token[]`, `token[0]`) are read by their last segment
that is neither empty nor a number; that segment is cut into lower-case words at `-`, `_`, any other
non-alphanumeric character and camelCase humps (`X_Api_Key`, `x-api-key`, `XApiKey` all read `x api key`); its
*runs* are the pieces between non-alphanumeric characters only (`XApiKey` is one run, `xapikey`). It is secret if
  * its words end with one of SENSITIVE_SUFFIXES, or its last run is one written without breaks
    (`auth_token`, `X-Amz-Security-Token`, `userPassword`, `client_secret`, `AWSACCESSKEYID`, `my-apikey`),
  * it is exactly one of SENSITIVE_WHOLE, in words or as one run (`key`, `KEY`, `auth`, `session`: too common as
    the tail of ordinary keys such as `sort_key` or `session_start` to match as suffixes), or
  * one of its runs contains one of SENSITIVE_INSIDE (`userpassword`, `PassWord2`, `myapikey`).
A word is always a piece of a run and a run a piece of the key, so a key is only secret if its text holds one of
TRIGGERS: that is what lets the calls fast path skip every other query string.
Not secret, on purpose: `page`, `size`, `sort`, `code` (OAuth's is single-use; `code=` is far more often a product
or country code), `keyword`, `monkey`, `tokenizer`, `tokens`/`max_tokens` (LLM analytics), `sort_key`,
`token_type`, `sig_alg`.
Separators are `&` and `;`. Every other byte is kept, except that the pieces without `=` that follow a secret value
are taken as the rest of that value (`token=ab;cd` -> `token=REDACTED`): a bare flag after a secret is rarer
than a secret holding an unescaped separator.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote_plus

import orjson

REDACTED = "REDACTED"

_SEGMENTS = re.compile(r"[\[\].]")
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[\W_]+")
_SEPARATOR = re.compile(r"([&;])")


def words(key: str) -> tuple[str, ...]:
    """A key's lower-case words: `X-Api-Key`, `x_api_key` and `XApiKey` are all ('x', 'api', 'key')."""
    return tuple(w.lower() for w in _NOT_WORD.split(_HUMP.sub("_", key)) if w)


def _phrases(*keys: str) -> frozenset[tuple[str, ...]]:
    return frozenset(words(k) for k in keys)


SENSITIVE_SUFFIXES: frozenset[tuple[str, ...]] = _phrases(
    # OpenTelemetry semconv `url.query` defaults; AWS SigV4 and GCS signed URLs; Azure SAS (`sig`)
    "AWSAccessKeyId", "Signature", "sig", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Credential",
    # OAuth 2.0 / OIDC and bearer material (access_token, refresh_token, id_token, auth_token, csrf_token, ...)
    "token", "jwt", "client_secret", "client_assertion", "code_verifier", "authorization", "cookie",
    # Sentry's default scrubbed fields (password, secret, passwd, api_key, credentials, private_key, session_key, ...)
    "secret", "password", "passwd", "passphrase", "pwd", "credential", "credentials",
    "api_key", "private_key", "secret_key", "access_key", "signing_key", "session_key",
    # API gateways' own credentials in URLs (Azure API Management's subscription-key) and session cookies' names
    "subscription_key", "sessionid", "session_id",
)
SENSITIVE_WHOLE: frozenset[tuple[str, ...]] = _phrases("key", "auth", "session")
SENSITIVE_INSIDE: frozenset[str] = frozenset({"password", "passwd", "passphrase", "apikey"})
# The same phrases written as one run (`AWSACCESSKEYID`, `awsaccesskeyid`, `PassWord`: no hump to cut at).
_SUFFIXES_JOINED = frozenset("".join(p) for p in SENSITIVE_SUFFIXES)
_WHOLE_JOINED = frozenset("".join(p) for p in SENSITIVE_WHOLE)
# Every sensitive key holds one of these (case-insensitively) once decoded: the longest word of each phrase, and
# the inside words. vectorised.py sends only query strings holding one (or `%`, `+`, non-ASCII) through redact_query.
TRIGGERS: frozenset[str] = frozenset(
    {max(reversed(p), key=len) for p in SENSITIVE_SUFFIXES | SENSITIVE_WHOLE} | SENSITIVE_INSIDE
)


@lru_cache(maxsize=4096)
def is_sensitive_key(raw_key: str) -> bool:
    """Whether a (possibly percent-encoded, bracketed or dotted) parameter or field name holds a credential."""
    key = unquote_plus(raw_key).strip()
    segment = next((s for s in reversed(_SEGMENTS.split(key)) if s.strip() and not s.strip().isdigit()), "")
    chunks = tuple(c.lower() for c in _NOT_WORD.split(segment) if c)
    if not chunks:
        return False
    ws = words(segment)
    if ws in SENSITIVE_WHOLE or (len(chunks) == 1 and chunks[0] in _WHOLE_JOINED):
        return True
    if chunks[-1] in _SUFFIXES_JOINED or any(ws[-len(p):] == p for p in SENSITIVE_SUFFIXES if len(p) <= len(ws)):
        return True
    return any(inside in c for c in chunks for inside in SENSITIVE_INSIDE)


def redact_query(query: str) -> str:
    """Replace sensitive parameter values with REDACTED; keep order, separators and other bytes."""
    if "=" not in query:
        return query
    parts = _SEPARATOR.split(query)  # [param, sep, param, sep, ..., param]: a separator is a piece without `=`
    out: list[str] = []
    i = 0
    while i < len(parts):
        key, sep, value = parts[i].partition("=")
        end = i + 1
        if sep and is_sensitive_key(key):
            while end + 1 < len(parts) and parts[end + 1] and "=" not in parts[end + 1]:
                value += parts[end] + parts[end + 1]
                end += 2
            if value:
                out.append(f"{key}={REDACTED}")
                i = end
                continue
        out.append(parts[i])
        i = end
    return "".join(out)


# Outside JSON: `key=value` pairs and `"key": value` pairs, as far as broken text lets them be seen.
# Linear on any input (these run on rejected messages up to 1 MiB): a key starts at the text's start or after a
# delimiter, a quoted name at a quote with no backslash before it, and no quantifier gives back what it took;
# otherwise a long run without `=`, or of `\"`, would be scanned again from each of its characters.
_TEXT_PARAM = re.compile(r"(?<![^\s&;?#\"'{},:/])([^\s&;?=#\"'{},:/]++)=([^\s&;#\"',}]++)")
_TEXT_FIELD = re.compile(r"(?<!\\)\"((?:[^\"\\]|\\.){1,200}+)\"\s*+:\s*+(\"(?:[^\"\\]|\\.)*+\"?|[^\s,{}\[\]\"]++)")


def redact_json(value: object) -> object:
    """A JSON document with the values of sensitive fields REDACTED and query strings in its text redacted."""
    if isinstance(value, dict):
        return {k: (REDACTED if v not in (None, "") and is_sensitive_key(str(k)) else redact_json(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    if isinstance(value, str) and "=" in value:
        head, mark, query = value.partition("?")
        return head + mark + redact_query(query) if mark else redact_query(value)
    return value


def redact_values(fields: dict[str, object]) -> dict[str, object]:
    """`redact_json` of an object whose keys are known not to be sensitive names (the native event's own): the
    same result, with only the values that can change looked at (a string holding `=`, a nested value). Half
    the time of `redact_json` on a native event (~1.5 against ~3 us)."""
    for k, v in fields.items():
        if (type(v) is str and "=" in v) or isinstance(v, (dict, list)):
            fields[k] = redact_json(v)
    return fields


def redact_text(text: str) -> str:
    """Text that is not JSON (a dead letter's broken bytes): sensitive `k=v` and `"k": v` values REDACTED."""
    text = _TEXT_PARAM.sub(lambda m: f"{m[1]}={REDACTED}" if is_sensitive_key(m[1]) else m[0], text)
    return _TEXT_FIELD.sub(lambda m: f'"{m[1]}": "{REDACTED}"' if is_sensitive_key(m[1]) else m[0], text)


def redact_bytes(value: bytes | None) -> bytes | None:
    """A rejected message's bytes with its credentials redacted; returned as they are when there is none."""
    if not value:
        return value
    try:
        doc = orjson.loads(value)
        clean = redact_json(doc)
        return value if clean == doc else orjson.dumps(clean)
    except (orjson.JSONDecodeError, RecursionError, TypeError):  # not JSON, or nested past what we can walk
        text = value.decode("utf-8", "surrogateescape")
        redacted = redact_text(text)
        return value if redacted == text else redacted.encode("utf-8", "surrogateescape")
