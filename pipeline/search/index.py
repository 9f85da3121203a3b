"""In-memory hybrid index, one per tenant: a tantivy BM25 index over `text.tokens` and a numpy matrix of vectors.

A tenant's documents live in that tenant's own `TenantIndex` (its own tantivy index, its own matrix), so a search
cannot see another tenant's documents: there is no filter to forget.

Writes are batched. `add` upserts a batch with one tantivy commit (a new segment; tantivy merges segments in the
background and keeps BM25 statistics exact across them), so a worker should call it once per consumed batch, not
once per document; `remove` deletes by key in one commit; `rebuild` builds a fresh index and swaps it in. A
document whose `updated_at` is not newer than the stored one is skipped, so a replayed batch changes nothing.
Vectors sit in a capacity-doubling float32 matrix; a removed row is filled with the last one (O(1), no gaps).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import tantivy

from pipeline.search import text as textmod
from pipeline.search.errors import DimensionMismatch

Kind = Literal["ticket", "kb_article"]
KINDS: tuple[Kind, ...] = ("ticket", "kb_article")
# tantivy's indexing arena, freed when the writer is dropped: the minimum for a batch, more for a bulk load so
# that 100k documents become one segment instead of several to merge.
_WRITER_HEAP, _BULK_HEAP, _BULK_DOCS = 15_000_000, 200_000_000, 10_000


@dataclass(frozen=True, slots=True)
class Doc:
    """One searchable object: a ticket's integrated text (subject, summary, conversation) or a KB article."""

    id: str
    kind: Kind
    title: str
    text: str
    vector: np.ndarray
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class _Entry:
    """What the index keeps of a Doc besides its vector, which lives only in the matrix."""

    kind: Kind
    title: str
    text: str
    updated_at: datetime


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")  # pre-tokenized, lower-cased
    builder.add_text_field("kind", tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("key", indexed=True, fast=True)
    return builder.build()


class TenantIndex:
    """One tenant's documents: BM25 over their tokens and cosine over their vectors."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._lock = threading.RLock()
        self._schema = _schema()
        self._bm25 = tantivy.Index(self._schema)
        self._docs: dict[str, _Entry] = {}
        self._key_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._next_key = 0
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._kinds = np.zeros(0, dtype=np.int8)
        self._row_ids: list[str] = []
        self._row_of: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._docs)

    def get(self, doc_id: str) -> Doc | None:
        with self._lock:
            entry, row = self._docs.get(doc_id), self._row_of.get(doc_id)
            if entry is None or row is None:
                return None
            return Doc(doc_id, entry.kind, entry.title, entry.text, self._vectors[row].copy(), entry.updated_at)

    def add(self, docs: Iterable[Doc], *, replace_equal: bool = False) -> int:
        """Insert or replace a batch (one commit); returns how many documents changed. `replace_equal`: a document
        as new as the stored one replaces it too (a re-embedded vector)."""
        with self._lock:
            fresh = self._newer(docs, replace_equal)
            if not fresh:
                return 0
            heap = _BULK_HEAP if len(fresh) >= _BULK_DOCS else _WRITER_HEAP
            writer = self._bm25.writer(heap_size=heap, num_threads=1)
            for doc in fresh:
                old = self._key_of.get(doc.id)
                if old is not None:
                    writer.delete_documents_by_term("key", old)
                    del self._id_of[old]
                writer.add_document(self._tantivy_doc(doc))
                self._put_vector(doc)
                self._docs[doc.id] = _Entry(doc.kind, doc.title, doc.text, doc.updated_at)
            self._commit(writer)
            return len(fresh)

    def remove(self, ids: Iterable[str]) -> int:
        """Delete documents by id (one commit); unknown ids are ignored. Returns how many were removed."""
        with self._lock:
            gone = [doc_id for doc_id in dict.fromkeys(ids) if doc_id in self._docs]
            if not gone:
                return 0
            writer = self._bm25.writer(heap_size=_WRITER_HEAP, num_threads=1)
            for doc_id in gone:
                key = self._key_of.pop(doc_id)
                del self._id_of[key]
                writer.delete_documents_by_term("key", key)
                self._drop_vector(doc_id)
                del self._docs[doc_id]
            self._commit(writer)
            return len(gone)

    def keyword(self, terms: Sequence[str], k: int, kinds: Sequence[Kind] | None = None) -> list[tuple[str, float]]:
        """Top-k (id, BM25 score) for documents holding at least one of the terms."""
        if not terms or k <= 0:
            return []
        should = [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "terms", t, index_option="freq"))
                  for t in terms]
        query = tantivy.Query.boolean_query(should)
        if kinds:
            of_kind = [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "kind", kind)) for kind in kinds]
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query),
                                                 (tantivy.Occur.Must, tantivy.Query.boolean_query(of_kind))])
        with self._lock:
            searcher = self._bm25.searcher()
            hits = searcher.search(query, k, count=False).hits
            keys = searcher.fast_field_values("key", [address for _, address in hits])
            found = [(self._id_of.get(int(key)) if key is not None else None, float(score))
                     for (score, _), key in zip(hits, keys, strict=True)]
        return [(doc_id, score) for doc_id, score in found if doc_id is not None]

    def semantic(self, vector: np.ndarray, k: int, kinds: Sequence[Kind] | None = None) -> list[tuple[str, float]]:
        """Top-k (id, cosine) by dot product with a unit query vector."""
        if vector.shape != (self.dim,):
            raise DimensionMismatch(f"query vector has {vector.shape[-1]} dimensions, the index {self.dim}")
        with self._lock:
            n = len(self._row_ids)
            if n == 0 or k <= 0:
                return []
            # einsum runs on this thread alone: on two busy cores a two-thread BLAS gemv waits on its slower
            # half and its p95 went from 7 to 100 ms; this scan is memory-bound, so one core loses little.
            scores = np.einsum("ij,j->i", self._vectors[:n], vector.astype(np.float32, copy=False))
            if kinds:
                scores[~np.isin(self._kinds[:n], [KINDS.index(kind) for kind in kinds])] = -np.inf
            top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(self._row_ids[i], float(scores[i])) for i in top if np.isfinite(scores[i])]

    def _newer(self, docs: Iterable[Doc], replace_equal: bool = False) -> list[Doc]:
        """The batch's documents newer than what is stored, the last of each id winning, dimensions checked."""
        latest: dict[str, Doc] = {}
        for doc in docs:
            if doc.vector.shape != (self.dim,):
                raise DimensionMismatch(f"document {doc.id!r} has a vector of shape {doc.vector.shape}, "
                                        f"the index expects ({self.dim},)")
            stored = latest.get(doc.id) or self._docs.get(doc.id)
            if stored is None or doc.updated_at > stored.updated_at or (
                    replace_equal and doc.updated_at == stored.updated_at):
                latest[doc.id] = doc
        return list(latest.values())

    def _tantivy_doc(self, doc: Doc) -> tantivy.Document:
        key = self._next_key
        self._next_key += 1
        self._key_of[doc.id], self._id_of[key] = key, doc.id
        out = tantivy.Document()
        out.add_text("terms", " ".join(textmod.tokens(f"{doc.title}\n{doc.text}")))
        out.add_text("kind", doc.kind)
        out.add_unsigned("key", key)
        return out

    def _commit(self, writer: tantivy.IndexWriter) -> None:
        writer.commit()
        writer.wait_merging_threads()  # finishes merges and releases the writer (and its lock) now
        self._bm25.reload()

    def _put_vector(self, doc: Doc) -> None:
        row = self._row_of.get(doc.id)
        if row is None:
            row = len(self._row_ids)
            if row == len(self._vectors):
                grown = max(1024, 2 * row)
                vectors, kinds = np.zeros((grown, self.dim), np.float32), np.zeros(grown, np.int8)
                vectors[:row], kinds[:row] = self._vectors[:row], self._kinds[:row]
                self._vectors, self._kinds = vectors, kinds
            self._row_ids.append(doc.id)
            self._row_of[doc.id] = row
        self._vectors[row] = doc.vector
        self._kinds[row] = KINDS.index(doc.kind)

    def _drop_vector(self, doc_id: str) -> None:
        row, last = self._row_of.pop(doc_id), len(self._row_ids) - 1
        if row != last:
            moved = self._row_ids[last]
            self._vectors[row], self._kinds[row] = self._vectors[last], self._kinds[last]
            self._row_ids[row], self._row_of[moved] = moved, row
        self._row_ids.pop()


class SearchIndex:
    """Every tenant's `TenantIndex`, created on a tenant's first document."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._tenants: dict[str, TenantIndex] = {}
        self._lock = threading.Lock()

    def tenant(self, tenant: str) -> TenantIndex | None:
        return self._tenants.get(tenant)

    def tenants(self) -> list[str]:
        return sorted(self._tenants)

    def add(self, tenant: str, docs: Iterable[Doc], *, replace_equal: bool = False) -> int:
        return self._get_or_create(tenant).add(docs, replace_equal=replace_equal)

    def remove(self, tenant: str, ids: Iterable[str]) -> int:
        index = self._tenants.get(tenant)
        return index.remove(ids) if index else 0

    def rebuild(self, tenant: str, docs: Iterable[Doc]) -> int:
        """Replace the tenant's documents with `docs`: built aside, then swapped in (searches see old or new)."""
        fresh = TenantIndex(self.dim)
        count = fresh.add(docs)
        with self._lock:
            self._tenants[tenant] = fresh
        return count

    def drop(self, tenant: str) -> None:
        with self._lock:
            self._tenants.pop(tenant, None)

    def _get_or_create(self, tenant: str) -> TenantIndex:
        index = self._tenants.get(tenant)
        if index is None:
            with self._lock:
                index = self._tenants.setdefault(tenant, TenantIndex(self.dim))
        return index
