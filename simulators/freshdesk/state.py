"""The simulator's moving parts: configuration, injectable faults, per-account rate windows and counters."""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import re
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulators.freshdesk.fixtures import Dataset, domain_seed

Action = Literal["drop", "error", "throttle"]
ADDRESS = re.compile(r"^(localhost|testserver|\d+(\.\d+){3})$")
DEFAULT_KEY = "your_api_key"  # the seed's placeholder: its curl examples work against the simulator unchanged
ANY_DOMAIN = "*"


def default_keys() -> dict[str, list[str]]:
    return {ANY_DOMAIN: [DEFAULT_KEY]}


def accepted_keys_text(keys: dict[str, list[str]]) -> str:
    """`your_api_key` (every account), or `acme.freshdesk.com: k1…; *: k3…`: for the start-up banners.

    The seed's placeholder is printed as it is; a key someone configured is a secret of theirs, so a log shows
    only its first two characters and its length."""
    def shown(ks: list[str]) -> str:
        return ", ".join(k if k == DEFAULT_KEY else f"{k[:2]}… ({len(k)} characters)" for k in ks) or "(none)"

    if set(keys) == {ANY_DOMAIN}:
        return f"{shown(keys[ANY_DOMAIN])} (every account)"
    return "; ".join(f"{domain}: {shown(k)}" for domain, k in keys.items())


class Faults(BaseModel):
    """What goes wrong, and how often; `*_next` counters are used up one API request at a time."""

    model_config = ConfigDict(extra="forbid")

    error_rate: Annotated[float, Field(ge=0, le=1)] = 0.0  # share of API requests answered with error_status
    error_status: Annotated[int, Field(ge=500, le=599)] = 503
    errors_next: Annotated[int, Field(ge=0)] = 0
    throttle_next: Annotated[int, Field(ge=0)] = 0  # injected 429s, whatever the budget says
    throttle_retry_after_s: Annotated[int, Field(ge=0)] = 1
    drop_rate: Annotated[float, Field(ge=0, le=1)] = 0.0  # share of API requests whose connection is closed unanswered
    drop_next: Annotated[int, Field(ge=0)] = 0
    delay_s: Annotated[float, Field(ge=0)] = 0.0  # added to every API request
    slow_next: Annotated[int, Field(ge=0)] = 0
    slow_s: Annotated[float, Field(ge=0)] = 2.0  # extra wait for each of the next slow_next requests


class SimulatorConfig(BaseModel):
    """How the simulator starts; `faults` can be changed later through POST /_simulator/faults."""

    model_config = ConfigDict(extra="forbid")

    tickets: Annotated[int, Field(ge=0)] = 3000
    seed: int = 1
    kb_articles: Annotated[int, Field(ge=0)] = 120
    plan: Annotated[int, Field(ge=1)] = 700  # credits per window: Growth 200, Pro 400, Enterprise 700, trial 50
    window_seconds: Annotated[float, Field(gt=0)] = 60.0  # the real "minute"; shorten it for fast tests
    # The keys each account accepts, by domain; "*" is for every account not listed. Others get Freshdesk's 401.
    keys: dict[str, list[str]] = Field(default_factory=default_keys)
    domains: list[str] | None = None  # None: every Host is an account; else other hosts answer 404
    default_domain: str = "simulator.freshdesk.com"  # for requests whose Host is an address (curl to 127.0.0.1)
    per_page_default: Annotated[int, Field(ge=1)] = 30
    per_page_max: Annotated[int, Field(ge=1)] = 100
    max_page: Annotated[int, Field(ge=1)] = 300
    end: datetime | None = None  # the newest created_at; None: today's midnight UTC
    span_days: Annotated[int, Field(ge=1)] = 365
    growth: Annotated[float, Field(ge=0)] = 0.0  # 0: tickets even over the span; >0: more of them recently
    attachment_url_ttl_s: Annotated[float, Field(gt=0)] = 300.0
    files_base_url: str | None = None  # where attachment_url points; None: the address the request reached
    faults: Faults = Field(default_factory=Faults)


class RateWindow:
    """One account's sliding window of credits: no window_seconds-long span ever holds more than the plan."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._spent: deque[tuple[float, int]] = deque()
        self.used = 0
        self.peak = 0

    def take(self, cost: int, now: float) -> tuple[bool, int, int]:
        """(accepted, remaining after this request, Retry-After seconds when refused)."""
        while self._spent and self._spent[0][0] <= now - self.window_s:
            self.used -= self._spent.popleft()[1]
        if self.used + cost > self.limit:
            return False, max(0, self.limit - self.used), self._retry_after(cost, now)
        self._spent.append((now, cost))
        self.used += cost
        self.peak = max(self.peak, self.used)
        return True, self.limit - self.used, 0

    def _retry_after(self, cost: int, now: float) -> int:
        freed = 0
        for stamp, spent in self._spent:
            freed += spent
            if self.used - freed + cost <= self.limit:
                return max(1, math.ceil(stamp + self.window_s - now))
        return max(1, math.ceil(self.window_s))


class FaultInjector:
    """Draws the fault for each API request from the current Faults, with a seeded generator."""

    def __init__(self, faults: Faults, seed: int) -> None:
        self.faults = faults
        self._rng = random.Random(seed)

    def draw(self) -> tuple[float, Action | None]:
        f, delay = self.faults, self.faults.delay_s
        if f.slow_next:
            f.slow_next -= 1
            delay += f.slow_s
        for counter, action in (("drop_next", "drop"), ("errors_next", "error"), ("throttle_next", "throttle")):
            if getattr(f, counter):
                setattr(f, counter, getattr(f, counter) - 1)
                return delay, action  # type: ignore[return-value]
        roll = self._rng.random()
        if roll < f.drop_rate:
            return delay, "drop"
        if roll < f.drop_rate + f.error_rate:
            return delay, "error"
        return delay, None


@dataclass
class Stats:
    """Requests by endpoint and status, by account, and the faults injected: what a job cost."""

    by_endpoint: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_status: Counter[str] = field(default_factory=Counter)
    domains: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    faults: Counter[str] = field(default_factory=Counter)
    files: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)  # API requests received and not yet answered
    peak_in_flight: Counter[str] = field(default_factory=Counter)  # the most at once, by endpoint
    peak_in_flight_total: int = 0
    started: float = field(default_factory=time.monotonic)

    def record(self, endpoint: str, domain: str, outcome: str) -> None:
        self.by_endpoint[endpoint][outcome] += 1
        self.by_status[outcome] += 1
        self.domains[domain]["requests"] += 1

    def began(self, endpoint: str) -> None:
        self.in_flight[endpoint] += 1
        self.peak_in_flight[endpoint] = max(self.peak_in_flight[endpoint], self.in_flight[endpoint])
        self.peak_in_flight_total = max(self.peak_in_flight_total, self.in_flight.total())

    def ended(self, endpoint: str) -> None:
        self.in_flight[endpoint] -= 1

    def snapshot(self, windows: dict[str, RateWindow]) -> dict[str, Any]:
        domains = {d: dict(c) | {"peak_window_credits": windows[d].peak if d in windows else 0}
                   for d, c in self.domains.items()}
        return {"requests": sum(self.by_status.values()), "by_endpoint": {k: dict(v) for k, v in
                                                                          self.by_endpoint.items()},
                "by_status": dict(self.by_status), "domains": domains, "faults": dict(self.faults),
                "files": dict(self.files), "peak_in_flight": dict(self.peak_in_flight),
                "peak_in_flight_total": self.peak_in_flight_total,
                "uptime_s": round(time.monotonic() - self.started, 3)}


class SimulatorState:
    """Accounts (created on first use), their rate windows, the fault injector and the counters."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.injector = FaultInjector(config.faults.model_copy(), config.seed)
        self.stats = Stats()
        self.windows: dict[str, RateWindow] = {}
        self._datasets: dict[str, Dataset] = {}
        self._file_key = hashlib.sha256(f"simulator-files:{config.seed}".encode()).digest()

    def domain_of(self, host: str | None) -> str:
        """The account a request is for: its Host header, unless that is an address (then the default)."""
        name = (host or "").lower()
        name = "" if name.startswith("[") else name.split(":", 1)[0]
        return self.config.default_domain if not name or ADDRESS.match(name) else name

    def exists(self, domain: str) -> bool:
        known = self.config.domains
        return known is None or domain in {d.lower() for d in known} or domain == self.config.default_domain

    def accepted_keys(self, domain: str) -> list[str]:
        keys = {d.lower(): k for d, k in self.config.keys.items()}
        return keys.get(domain, keys.get(ANY_DOMAIN, []))

    def key_ok(self, domain: str, key: str) -> bool:
        # every candidate compared, in constant time each: the answer's timing does not tell which one matched
        matches = [hmac.compare_digest(key.encode(), v.encode()) for v in self.accepted_keys(domain)]
        return bool(key) and any(matches)

    def dataset(self, domain: str) -> Dataset:
        if domain not in self._datasets:
            c = self.config
            self._datasets[domain] = Dataset(c.tickets, domain_seed(c.seed, domain), c.kb_articles, c.end,
                                             c.span_days, c.growth)
        return self._datasets[domain]

    def window(self, domain: str) -> RateWindow:
        if domain not in self.windows:
            self.windows[domain] = RateWindow(self.config.plan, self.config.window_seconds)
        return self.windows[domain]

    def sign(self, domain: str, attachment_id: int, expires: int) -> str:
        return hmac.new(self._file_key, f"{domain}:{attachment_id}:{expires}".encode(), "sha256").hexdigest()[:32]
