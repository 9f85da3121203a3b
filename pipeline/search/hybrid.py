"""Hybrid search over one tenant: BM25 and cosine rankings fused by Reciprocal Rank Fusion, with snippets.

RRF (Cormack et al., 2009) scores a document sum(1 / (60 + rank)) over the rankings it appears in. It needs no
calibration between BM25 scores (unbounded, corpus-dependent) and cosines (model-dependent), which is why it is
used here rather than a weighted sum. Each ranking is cut at `depth` (50 or 5 k, whichever is larger).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pipeline.search import text as textmod
from pipeline.search.embed import Embedder
from pipeline.search.index import Kind, SearchIndex

Mode = Literal["hybrid", "keyword", "semantic"]
RRF_K = 60


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    kind: Kind
    title: str
    score: float  # RRF score in hybrid mode, else the single ranking's score
    keyword_score: float | None  # BM25, when the keyword ranking found it
    semantic_score: float | None  # cosine, when the semantic ranking found it
    snippet: str  # ~200 characters, HTML-escaped, query terms in <mark>
    updated_at: datetime


def search(index: SearchIndex, tenant: str, query: str, embedder: Embedder | None, k: int = 10,
           kinds: Sequence[Kind] | None = None, mode: Mode = "hybrid") -> list[Hit]:
    """The tenant's best k documents for the query; an empty list for an unknown tenant or a blank query."""
    tenant_index = index.tenant(tenant)
    if tenant_index is None or not query.strip() or k <= 0:
        return []
    terms = textmod.query_terms(query)
    depth = max(50, 5 * k)
    keyword = tenant_index.keyword(terms, depth, kinds) if mode != "semantic" else []
    semantic: list[tuple[str, float]] = []
    if mode != "keyword":
        if embedder is None:
            raise ValueError(f"mode {mode!r} needs an embedder")
        semantic = tenant_index.semantic(embedder.embed([query])[0], depth, kinds)
    ranked = fuse(keyword, semantic) if mode == "hybrid" else keyword or semantic
    bm25, cosine = dict(keyword), dict(semantic)
    hits = []
    for doc_id, score in ranked[:k]:
        doc = tenant_index.get(doc_id)
        if doc is None:  # removed between ranking and now
            continue
        hits.append(Hit(doc.id, doc.kind, doc.title, score, bm25.get(doc_id), cosine.get(doc_id),
                        textmod.snippet(doc.text, terms), doc.updated_at))
    return hits


def fuse(*rankings: list[tuple[str, float]], rrf_k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal Rank Fusion of best-first rankings; ties keep the order of first appearance."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, (doc_id, _) in enumerate(ranking, 1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])
