"""Keyword + semantic search over tickets and KB articles, per tenant, in memory (DuckDB stays the store)."""

from pipeline.search.embed import Embedder, HttpEmbedder, LocalEmbedder, embedder_for, normalize
from pipeline.search.errors import (
    DimensionMismatch,
    EmbeddingModelError,
    EmbeddingRejected,
    EmbeddingUnavailable,
    SearchError,
)
from pipeline.search.hybrid import Hit, Mode, fuse, search
from pipeline.search.index import KINDS, Doc, Kind, SearchIndex, TenantIndex

__all__ = [
    "KINDS",
    "DimensionMismatch",
    "Doc",
    "Embedder",
    "EmbeddingModelError",
    "EmbeddingRejected",
    "EmbeddingUnavailable",
    "Hit",
    "HttpEmbedder",
    "Kind",
    "LocalEmbedder",
    "Mode",
    "SearchError",
    "SearchIndex",
    "TenantIndex",
    "embedder_for",
    "fuse",
    "normalize",
    "search",
]
