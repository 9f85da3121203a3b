"""What can go wrong embedding and indexing; messages never carry an API key or a document's text."""

from __future__ import annotations


class SearchError(Exception):
    """Base of every search error."""


class EmbeddingModelError(SearchError):
    """The local model could not be built or loaded (a package missing, or its weights not laid out as expected)."""


class EmbeddingUnavailable(SearchError):
    """The embeddings service did not answer usefully after the retries (network, 429, 5xx, a malformed body)."""


class EmbeddingRejected(SearchError):
    """The embeddings service refused the request (4xx other than 429): retrying cannot help."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class DimensionMismatch(SearchError):
    """A vector's length differs from the tenant index's dimension (documents embedded by another model)."""
