"""Pacing Freshdesk requests: one RateBudget per account (domain), shared by every client and job in the process.

Freshdesk gives each account a credit budget per minute (trial 50, Growth 200, Pro 400, Enterprise 700) and answers
429 past it. The budget is a token bucket refilled at a little under plan/minute with a small burst, so that no
minute-long span (sliding or fixed) holds more than the plan, and it is corrected by what the server says:
`X-RateLimit-Total` (the real plan), `X-RateLimit-Remaining` (another consumer may share the account) and
`X-RateLimit-Used-CurrentRequest` (what a request really cost). Callers reserve before sending; a reservation
never holds a lock across an await, so the budget works from any thread or event loop.

Requests wait in line by priority: `acquire(cost, rank)` serves the lowest rank first (an `urgent` job's 0 before
a `low` job's 3), in arrival order within a rank, and hands out credits only as the bucket has them, so a
request that arrives later with a better rank really goes before the ones already waiting (seed 000's
`priority_change`). With every request at one rank this is the plain FIFO bucket.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable

TRIAL_PLAN = 50  # the smallest plan: what we assume until the server tells us its X-RateLimit-Total
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
LINE_POLL_S = 0.01  # how often a request not at the head of the line looks again


class RateBudget:
    """A token bucket in credits for one account; `acquire` before each request, `settle` with its response."""

    def __init__(self, per_window: int | None = None, window_s: float = 60.0, headroom: float = 0.03,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self._headroom, self._clock = window_s, headroom, clock
        self._lock = threading.Lock()
        self.plan_known = per_window is not None
        self._configure(per_window or TRIAL_PLAN)
        self._tokens, self._stamp = self.burst, clock()
        self._blocked_until = 0.0
        self._in_flight = 0
        self.last_remaining: int | None = None
        self._seen_at = float("-inf")
        self.waited_s = 0.0
        self.credits = 0
        self._line: list[tuple[int, int]] = []  # (rank, arrival) of the requests waiting for credits
        self._arrivals = itertools.count()

    def _configure(self, limit: int) -> None:
        # burst + rate * (window + jitter) must stay under the limit, or a sliding window would refuse us.
        self.limit = limit
        self.burst = max(1.0, limit * 0.03)
        self.rate = (limit - self.burst) * (1 - self._headroom) / self.window_s

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, cost: int = 1, rank: int = PRIORITY_RANK["normal"]) -> None:
        """Wait for `cost` credits: the head of the line (lowest rank, then earliest) takes them once the bucket
        holds them; everyone else waits behind it."""
        ticket = (rank, next(self._arrivals))
        with self._lock:
            heapq.heappush(self._line, ticket)
        try:
            while True:
                delay = self._take(ticket, cost)
                if delay <= 0:
                    return
                self.waited_s += delay
                await asyncio.sleep(delay)
        finally:
            with self._lock:
                if ticket in self._line:
                    self._line.remove(ticket)
                    heapq.heapify(self._line)

    def _take(self, ticket: tuple[int, int], cost: int) -> float:
        """Take the credits if `ticket` heads the line and they are there (0.0); else how long to wait."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            if self._line[0] != ticket:
                return LINE_POLL_S
            if now < self._blocked_until:  # a 429 pauses everyone
                return self._blocked_until - now
            if self._tokens < min(cost, self.burst):
                return (min(cost, self.burst) - self._tokens) / self.rate
            heapq.heappop(self._line)
            self._tokens -= cost
            self._in_flight += cost
            self.credits += cost
            return 0.0

    def settle(self, reserved: int, total: int | None = None, remaining: int | None = None,
               used: int | None = None) -> None:
        """Release a reservation and correct the bucket with the response's rate-limit headers (if any)."""
        with self._lock:
            self._in_flight -= reserved
            if total and total != self.limit:
                self._configure(total)
                self.plan_known = True
            self._refill(self._clock())
            if used is not None and used > reserved:
                self._tokens -= used - reserved
                self.credits += used - reserved
            if remaining is not None:
                self.last_remaining, self._seen_at = remaining, self._clock()
                self._tokens = min(self._tokens, remaining - self._in_flight)

    def throttled(self, retry_after_s: float) -> None:
        """The server refused a request: every client of this account waits until Retry-After has passed."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._blocked_until = max(self._blocked_until, now + retry_after_s)
            self._tokens = min(self._tokens, 0.0)

    def expects_throttle(self, cost: int) -> bool:
        """True when the server's latest word (within a window) left no room for `cost` credits."""
        recent = self._clock() - self._seen_at < self.window_s
        return recent and self.last_remaining is not None and self.last_remaining < cost

    def set_plan(self, per_window: int) -> None:
        with self._lock:
            self._configure(per_window)
            self.plan_known = True


class BudgetRegistry:
    """Budgets by domain: asking twice for one domain gives the same budget."""

    def __init__(self) -> None:
        self._budgets: dict[str, RateBudget] = {}
        self._lock = threading.Lock()

    def get(self, domain: str, *, per_window: int | None = None, window_s: float = 60.0) -> RateBudget:
        key = domain.strip().lower()
        with self._lock:
            budget = self._budgets.get(key)
            if budget is None:
                budget = self._budgets[key] = RateBudget(per_window, window_s)
            elif per_window is not None and not budget.plan_known:
                budget.set_plan(per_window)
            return budget

    def clear(self) -> None:
        with self._lock:
            self._budgets.clear()


budgets = BudgetRegistry()


def budget_for(domain: str, *, per_window: int | None = None, window_s: float = 60.0) -> RateBudget:
    """The process-wide budget of one Freshdesk account (created on first use; the first window_s wins)."""
    return budgets.get(domain, per_window=per_window, window_s=window_s)
