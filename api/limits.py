"""Size limits: request bodies no bigger than one entry message, and batches split into messages that fit.

A body over `max_message_bytes` is refused with 413 before it is read whole: at once when its Content-Length
says so, else as soon as the bytes received pass the limit. A batch under the limit can still grow when the
api adds ids and tenants, so it is published as as many messages as it takes, each within the limit.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import shaped_error


class TooLarge(ValueError):
    """One item alone is over the message limit."""


# Request bodies may come compressed (RFC 9110 §8.4): the OpenTelemetry Collector's otlphttp exporter sends gzip
# unless told otherwise. zlib's window bits for each coding: gzip's header, and "deflate", which HTTP means as
# the zlib format.
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}


class BodyLimitMiddleware:
    """413 for a request body over `limit` bytes, in the route's error shape, without buffering it; a body sent
    with `Content-Encoding: gzip` (or deflate) is decompressed on the way in, and then its decompressed size
    is held to the same limit, so a small bomb cannot fill the api's memory. Another coding gets 415."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send, 413, self._message())
            return
        coding = headers.get(b"content-encoding", b"").decode("latin-1").strip().lower()
        if coding not in ("", "identity") and coding not in _WBITS:
            await self._refuse(scope, receive, send, 415, f"Content-Encoding {coding[:40]!r} is not supported: "
                                                          "send the body as it is, gzip or deflate",
                               {"Accept-Encoding": "gzip, deflate"})  # RFC 9110 15.5.16: the codings it takes
            return
        decoder = _Decoder(coding, self.limit, self._message) if coding in _WBITS else None
        if decoder is not None:  # what the routes see is the body itself
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"]
                                          if k not in (b"content-encoding", b"content-length")]}
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                # FastAPI re-raises an HTTPException met while reading the body: the app's handlers shape it.
                raise HTTPException(413, self._message())
            if decoder is not None and message["type"] == "http.request":
                body = decoder.feed(message.get("body", b""), last=not message.get("more_body", False))
                message = {**message, "body": body}
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"request body is over the {self.limit}-byte limit (STREAMDESK_MAX_MESSAGE_BYTES)"

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str,
                      headers: dict[str, str] | None = None) -> None:
        response = shaped_error(Request(scope), status, message, headers)
        await response(scope, receive, send)


class _Decoder:
    """A compressed body decompressed chunk by chunk, never past `limit` bytes out (413), a broken or truncated
    stream refused (400). Concatenated gzip members are one body, as gzip reads them."""

    def __init__(self, coding: str, limit: int, too_large: Callable[[], str]) -> None:
        self.coding, self.limit, self.too_large = coding, limit, too_large
        self.inflate = zlib.decompressobj(_WBITS[coding])
        self.out = 0

    def feed(self, data: bytes, last: bool) -> bytes:
        parts = []
        try:
            while data:
                part = self.inflate.decompress(data, self.limit + 1 - self.out)
                self.out += len(part)
                if self.out > self.limit or self.inflate.unconsumed_tail:
                    raise HTTPException(413, self.too_large() + " once decompressed")
                parts.append(part)
                data = self.inflate.unused_data if self.inflate.eof else b""
                if data:  # another gzip member follows
                    self.inflate = zlib.decompressobj(_WBITS[self.coding])
            if last:
                if not self.inflate.eof:
                    raise HTTPException(400, f"the {self.coding} body ends before its compressed stream does")
                parts.append(self.inflate.flush())
        except zlib.error as exc:
            raise HTTPException(400, f"the body is not valid {self.coding}: {exc}") from None
        return b"".join(parts)


def json_batches(items: list[Any], limit: int) -> Iterator[bytes]:
    """JSON arrays of `items`, in order, each at most `limit` bytes; TooLarge if one item cannot fit alone."""
    chunk: list[bytes] = []
    size = 2  # the brackets
    for i, item in enumerate(items):
        encoded = orjson.dumps(item)
        if len(encoded) + 2 > limit:
            raise TooLarge(f"item {i} is {len(encoded)} bytes as JSON, over the {limit}-byte message limit")
        if chunk and size + len(encoded) + 1 > limit:
            yield b"[" + b",".join(chunk) + b"]"
            chunk, size = [], 2
        size += len(encoded) + (1 if chunk else 0)
        chunk.append(encoded)
    if chunk:
        yield b"[" + b",".join(chunk) + b"]"


async def send_batches(producer: AIOKafkaProducer, topic: str, items: list[Any], key: bytes,
                       limit: int) -> list[asyncio.Future]:
    """Every item sent as JSON arrays within `limit`; returns the acknowledgements to await."""
    payloads = await asyncio.to_thread(lambda: list(json_batches(items, limit)))
    return [await producer.send(topic, p, key=key) for p in payloads]

