"""The tickets stream's batching agents: integrated objects -> vectors on `tickets.vectors`.

`embed_objects` reads the integrated objects of `tickets.normalized` (summaries are already in them) a batch
at a time; `reembed_objects` reads what `POST /ingest/sync-summaries` asks for on `tickets.embed_requests`
(objects with no current vector, or all of a company's with `force_rebuild`). Both embed off the event loop
(the model runs in a thread) and send one message per tenant per batch, keyed by tenant; the materializer
upserts them into `ticket_vectors` and the api indexes them.

When the embedder fails (an embeddings URL that is down past its retries) a streamed batch is logged and
counted (the objects are stored all the same, without a vector: `/ingest/metrics` shows them pending and
`sync-summaries` embeds them later); a failed request goes to `tickets.embed_requests.dlq` with the error.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import faust
import orjson
import structlog

from pipeline.broker.agent_topics import AgentTopics
from pipeline.broker.records import Sender
from pipeline.broker.topics import EMBED_REQUESTS, TICKETS_NORMALIZED, TICKETS_VECTORS
from pipeline.dlq import DeadLetter
from pipeline.metrics import EVENTS
from pipeline.search import Embedder, SearchError, embedder_for
from pipeline.search.vectors import VectorCache, vector_rows
from pipeline.settings import Settings

log = structlog.get_logger(__name__)
TAKE_MESSAGES, TAKE_WITHIN_S = 32, 0.2  # a tickets.normalized message carries up to one ingest batch (<= 200)


class Embedding:
    """The worker's embedder (loaded on first use, in the thread that embeds) and its cache of recent vectors."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache = VectorCache()
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()  # both agents embed in executor threads: one model, one cache at a time

    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = embedder_for(self.settings.embeddings_url, cache_dir=self.settings.models_path)
        return self._embedder

    def _rows(self, objects: Sequence[dict[str, Any]], force: bool) -> list[dict[str, Any]]:
        with self._lock:
            return vector_rows(objects, self.embedder(), self.cache, force=force)

    async def rows(self, objects: Sequence[dict[str, Any]], force: bool = False) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._rows, objects, force)


async def embed_and_send(embedding: Embedding, vectors: faust.TopicT, objects: list[dict[str, Any]], source: str,
                         force: bool = False) -> str | None:
    """Embed and send one message per tenant; returns the embedder's error instead when it failed."""
    if not objects:
        return None
    try:
        rows = await embedding.rows(objects, force)
    except SearchError as exc:
        log.error("embedding_failed", objects=len(objects), source=source, error=str(exc))
        EVENTS.labels(source, "embed_failed").inc(len(objects))
        return str(exc)
    by_tenant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_tenant[row["tenant"]].append(row)
    for tenant, batch in by_tenant.items():
        await vectors.send(key=tenant.encode(), value=orjson.dumps({"vectors": batch}))
    EVENTS.labels(source, "embedded").inc(len(rows))
    return None


async def embed_normalized(values: Sequence[bytes], embed: Callable[[list[dict[str, Any]]], Awaitable[Any]],
                           vectors: Sender) -> None:
    """A batch of `tickets.normalized` messages: their integrated objects embedded (`embed`), then each job's end
    mark passed on after the vectors of everything before it. What is not a normalized batch is skipped here (the
    materializer dead-letters it)."""
    objects, marks = [], []
    for value in values:
        try:
            doc = orjson.loads(value)
            objects += doc["tables"].get("integrated_objects", [])
            marks += doc.get("marks", [])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            continue
    await embed(objects)
    for mark in marks:
        await vectors.send(key=str(mark["tenant"]).encode(), value=orjson.dumps({"vectors": [], "marks": [mark]}))


def register_embed_agents(app: faust.App, settings: Settings, topics: AgentTopics) -> None:
    """Bind the handlers to this worker's topics (names carry the settings' prefix)."""
    vectors = topics(TICKETS_VECTORS)
    embedding = Embedding(settings)

    async def send(objects: list[dict[str, Any]], source: str, force: bool = False) -> str | None:
        return await embed_and_send(embedding, vectors, objects, source, force)

    @app.agent(topics(TICKETS_NORMALIZED))
    async def embed_objects(stream: faust.StreamT) -> None:
        async for values in stream.take(TAKE_MESSAGES, within=TAKE_WITHIN_S):
            await embed_normalized(values, partial(send, source=settings.topic(TICKETS_NORMALIZED)), vectors)

    @app.agent(topics(EMBED_REQUESTS))
    async def reembed_objects(stream: faust.StreamT) -> None:
        async for ev, request in topics.decoded(EMBED_REQUESTS, stream):
            m = ev.message
            error = await send([o.model_dump() for o in request.objects], m.topic, request.force)
            if error is not None:  # the request is kept, with why: sync-summaries answers with it
                await topics.dead_letter(DeadLetter.of(f"embedding failed: {error}", m.topic, m.partition, m.offset,
                                                       None, m.value))
