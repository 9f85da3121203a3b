"""Produce -> queryable: how long a message waited between its producer and its row being committed in DuckDB.

The materializer calls `observe` after each committed batch with the Kafka timestamps of every partition's
first and last message (the oldest and the newest of that partition's share). For calls the timestamp is the
oldest produce time on calls.raw of the messages a normalized batch came from (pipeline/calls/stream.py sets
it), so the figure covers the whole path, raw event to row. Samples are kept for `window_s`; `figures` gives
p50/p99 per topic over a recent span (the console's freshness panel, and the histogram Prometheus scrapes).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable

from pipeline.metrics import FRESHNESS_SECONDS


class Freshness:
    def __init__(self, window_s: float = 900.0, max_samples: int = 20_000) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, str, float]] = deque(maxlen=max_samples)
        self._lock = threading.Lock()  # observed from the writer's thread, read from the event loop

    def observe(self, topic: str, stamps_ms: Iterable[int], now: float | None = None) -> None:
        now = time.time() if now is None else now
        seen = [max(0.0, now - ms / 1000) for ms in stamps_ms if ms and ms > 0]
        with self._lock:
            for lag in seen:
                self._samples.append((now, topic, lag))
        for lag in seen:
            FRESHNESS_SECONDS.labels(topic).observe(lag)

    def figures(self, span_s: float = 300.0, now: float | None = None) -> dict[str, dict[str, float | int]]:
        """{topic: {p50_s, p99_s, max_s, samples}} over the last `span_s` seconds."""
        now = time.time() if now is None else now
        by_topic: dict[str, list[float]] = {}
        with self._lock:
            for at, topic, lag in self._samples:
                if now - at <= span_s:
                    by_topic.setdefault(topic, []).append(lag)
        return {topic: _summary(sorted(lags)) for topic, lags in sorted(by_topic.items())}


def _summary(lags: list[float]) -> dict[str, float | int]:
    def rank(q: float) -> float:  # nearest rank: a figure that was really observed
        return lags[min(len(lags) - 1, max(0, round(q * len(lags)) - 1))]

    return {"p50_s": round(rank(0.5), 3), "p99_s": round(rank(0.99), 3), "max_s": round(lags[-1], 3),
            "samples": len(lags)}
