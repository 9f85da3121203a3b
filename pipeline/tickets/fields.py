"""Field readers for platform records: each returns a clean value or raises Invalid naming the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pipeline.broker import entry_messages

_SECRET = re.compile(r"api[_-]?key|apikey|passw(or)?d|passwd|secret|token|authori[sz]ation|credential|private[_-]?key",
                     re.IGNORECASE)
_SHA256 = re.compile(r"[0-9a-f]{64}")


Invalid = entry_messages.Invalid  # the record cannot become a row; the message is the DLQ reason


def ident(value: Any, what: str) -> str:
    """A required platform id (Freshdesk's are integers) as text."""
    found = opt_ident(value, what)
    if found is None:
        raise Invalid(f"missing {what}")
    return found


def opt_ident(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if type(value) is int:
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= 128:
        return value.strip()
    raise Invalid(f"{what} {value!r} is not an id (an integer or a non-empty string)")


def timestamp(value: Any, what: str) -> datetime:
    """A required ISO 8601 timestamp (`2025-06-22T14:30:52Z`, or with an offset) in UTC; no offset means UTC."""
    found = opt_timestamp(value, what)
    if found is None:
        raise Invalid(f"missing {what}")
    return found


def opt_timestamp(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{what} {value!r} is not an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"{what} {value!r} is not an ISO 8601 timestamp") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def code_name(value: Any, names: Mapping[int, str], prefix: str) -> str | None:
    """A numeric code by its name; an unknown code is kept as `<prefix>_<n>`, so nothing is lost."""
    if value is None:
        return None
    if type(value) is not int:
        raise Invalid(f"{prefix} {value!r} is not an integer code")
    return names.get(value, f"{prefix}_{value}")


def text(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise Invalid(f"{what} is a JSON {type(value).__name__}, not a string")


def flag(value: Any, what: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise Invalid(f"{what} {value!r} is not a boolean")


def count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise Invalid(f"{what} {value!r} is not a non-negative integer")
    return value


def tags(value: Any) -> list[str]:
    """Tags as a list of distinct trimmed strings, in their order; a comma-separated string is split."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise Invalid("tags is not a list of strings")
    return list(dict.fromkeys(t.strip() for t in value if t.strip()))


def sha256(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256.fullmatch(value.lower()):
        raise Invalid("content_sha256 is not 64 hexadecimal digits")
    return value.lower()


def is_secret(name: str) -> bool:
    """A field name that looks like it holds a credential."""
    return bool(_SECRET.search(name))


def scrub(value: Any) -> Any:
    """The value with every credential-looking key removed, at any depth."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not (isinstance(k, str) and is_secret(k))}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def has_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return any((isinstance(k, str) and is_secret(k)) or has_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_secret(v) for v in value)
    return False


def custom_fields(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("custom_fields is not an object")
    cleaned: dict[str, Any] = scrub(value)
    return cleaned


def url_without_query(value: Any) -> str | None:
    """A pre-signed download URL is a bearer credential (its signature is in the query): keep only the rest."""
    url = text(value, "attachment_url")
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # user:password@ is a credential too
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
