"""Events per second per topic and outcome, from the workers' cumulative heartbeat counters."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

RATE_SPAN_S = 30.0  # rates are averaged over about this long


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    totals: dict[tuple[str, str], float]


class TopicRates:
    """Per topic and outcome, events per second: the difference of the workers' heartbeat counters between two
    samples about `RATE_SPAN_S` apart (a sample is taken whenever a page or its live stream is drawn)."""

    def __init__(self) -> None:
        self.samples: deque[Sample] = deque(maxlen=120)

    def add(self, totals: dict[tuple[str, str], float], now: float | None = None) -> dict[tuple[str, str], float]:
        now = time.time() if now is None else now
        if not self.samples or now - self.samples[-1].at >= 1.0:
            self.samples.append(Sample(now, totals))
        base = next((s for s in self.samples if now - s.at <= RATE_SPAN_S and now - s.at >= 2.0), None)
        if base is None:
            return {}
        dt = now - base.at
        return {k: max(0.0, (v - base.totals.get(k, 0.0)) / dt) for k, v in totals.items()}
