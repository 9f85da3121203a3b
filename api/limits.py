"""Size limits: request bodies no bigger than one entry message, and batches split into messages that fit.

A body over `max_message_bytes` is refused with 413 before it is read whole: at once when its Content-Length
says so, else as soon as the bytes received pass the limit. A batch under the limit can still grow when the
api adds ids and tenants, so it is published as as many messages as it takes, each within the limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import shaped_error


class TooLarge(ValueError):
    """One item alone is over the message limit."""


class BodyLimitMiddleware:
    """413 for a request body over `limit` bytes, in the route's error shape, without buffering it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                # FastAPI re-raises an HTTPException met while reading the body: the app's handlers shape it.
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"request body is over the {self.limit}-byte limit (STREAMDESK_MAX_MESSAGE_BYTES)"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = shaped_error(Request(scope), 413, self._message())
        await response(scope, receive, send)


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

