"""What an entry topic accepts: UTF-8 JSON, at most `max_message_bytes` a message (1 MiB unless
STREAMDESK_MAX_MESSAGE_BYTES says otherwise); what it cannot read is a dead letter."""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.settings import get_settings

MAX_VALUE_BYTES = get_settings().max_message_bytes


class Invalid(ValueError):
    """The message or record cannot become a row; the message is the DLQ reason."""


def decode_json(value: bytes | None, what: str | None = None) -> Any:
    """The message's JSON, or Invalid saying why not; with `what`, it must be one of those or an array of them."""
    if value is None:
        raise Invalid("empty message (null value)")
    if len(value) > MAX_VALUE_BYTES:
        raise Invalid(f"message is {len(value)} bytes, over the {size_text(MAX_VALUE_BYTES)} limit")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("not UTF-8") from None
        raise Invalid(f"not JSON: {exc}") from None
    if what is not None and not isinstance(parsed, dict | list):
        raise Invalid(f"JSON {type(parsed).__name__} is not {what} or an array of them")
    return parsed


def size_text(n: int) -> str:
    """1048576 -> '1 MiB'; sizes that are not whole KiB/MiB stay in bytes."""
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def element_bytes(obj: Any) -> bytes | None:
    """A rejected batch element as JSON for its dead letter; None if it nests too deeply to write back."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        # orjson reads 1024 levels but writes 254: raising here would stop the stream on one hostile message.
        # The letter's offset and index still point at the element in the source topic.
        return None
