"""Where an integrated object becomes a vector: the text the model reads, the vector row, its wire form.

The worker's embedding agent turns the integrated objects of `tickets.normalized` (and the api's
re-embedding requests) into rows for `ticket_vectors`, sent on `tickets.vectors` as JSON with each vector
as base64 little-endian float32 (2.7 KB for 512 dimensions, against ~10 KB as a JSON list). A small LRU of
vectors by text hash spares re-embedding a text the worker has just embedded (a replayed batch, an update
that left subject, summary and text alone).
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pipeline.search.embed import Embedder

EMBED_CHARS = 2000  # what the model sees of an object: title, summary, then the text (it reads <= 256 tokens)
CACHE_VECTORS = 20_000  # ~40 MB of 512-d float32


def embed_text(title: str | None, summary: str | None, text: str | None) -> str:
    """The text an object is embedded from: its title, its summary, then its text, cut to EMBED_CHARS."""
    return "\n".join(p for p in (title, summary, text) if p)[:EMBED_CHARS]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def decode_vector(data: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data, validate=True), dtype="<f4").astype(np.float32)


class VectorCache:
    """The last CACHE_VECTORS vectors by (model, text hash), least recently used dropped first."""

    def __init__(self, size: int = CACHE_VECTORS) -> None:
        self.size = size
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, model: str, digest: str) -> np.ndarray | None:
        vector = self._vectors.get((model, digest))
        if vector is None:
            self.misses += 1
            return None
        self.hits += 1
        self._vectors.move_to_end((model, digest))
        return vector

    def put(self, model: str, digest: str, vector: np.ndarray) -> None:
        self._vectors[(model, digest)] = vector
        self._vectors.move_to_end((model, digest))
        while len(self._vectors) > self.size:
            self._vectors.popitem(last=False)


def vector_rows(objects: Sequence[Mapping[str, Any]], embedder: Embedder, cache: VectorCache | None = None,
                *, force: bool = False) -> list[dict[str, Any]]:
    """`ticket_vectors` rows (wire form) for integrated objects: one embedder call for the texts not cached.

    `force` (a rebuild) embeds every text again. Objects need tenant, key, object_type, updated_at and either
    `embed_text` or title/summary/text.
    """
    texts = [o["embed_text"] if "embed_text" in o else embed_text(o.get("title"), o.get("summary"), o.get("text"))
             for o in objects]
    digests = [text_hash(t) for t in texts]
    model = embedder.name
    vectors: list[np.ndarray | None] = [None if force or cache is None else cache.get(model, d) for d in digests]
    todo = [i for i, v in enumerate(vectors) if v is None]
    if todo:
        fresh = embedder.embed([texts[i] for i in todo])
        for i, vector in zip(todo, fresh, strict=True):
            vectors[i] = vector
            if cache is not None:
                cache.put(model, digests[i], vector)
    now = datetime.now(UTC).isoformat()
    return [{"tenant": o["tenant"], "key": o["key"], "kind": o["object_type"], "model": model, "text_hash": d,
             "vector": encode_vector(v), "updated_at": _iso(o["updated_at"]), "embedded_at": now}
            for o, d, v in zip(objects, digests, vectors, strict=True)]


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
