"""Seed 000's four alerts, evaluated continuously by the api: each on or off per tenant, since when, and why.

| alert | on when (settings) | the seed's advice |
|---|---|---|
| `job_failure_rate` | failed / finished jobs in `ALERT_WINDOW_S` > `ALERT_JOB_FAILURE_PERCENT` (5) | API 키 확인 |
| `rate_limit_use` | a running job's Freshdesk rate budget used > `ALERT_RATE_LIMIT_PERCENT` (80) | batch_size 줄이기 |
| `queue_wait` | a job queued for longer than `ALERT_QUEUE_WAIT_S` (1,800) | 리소스 부족 확인 |
| `memory` | memory in use > `ALERT_MEMORY_PERCENT` (80) of the limit (cgroup, else the machine's) | 스케일 업 고려 |

The job alerts are per tenant (an `iam_admin` sees its own); `memory` is the host's (tenant `*`, system_admin
only). Every `ALERT_INTERVAL_S` the evaluator recomputes them all; an alert keeps the time it turned on until it
turns off. Prometheus reads `streamdesk_alert_firing{alert}` (for how many tenants, or the host, it is on) and
`streamdesk_alert_value{alert}` (the worst figure), with no tenant label: `/metrics` is public, and which
companies fail is theirs to know. deploy/prometheus/rules.yml turns them into Alertmanager alerts; the console's
Alerts page (signed in) shows each tenant's state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from api.background import BackgroundTask, every
from pipeline.metrics import ALERT_FIRING, ALERT_VALUE
from pipeline.settings import Settings
from pipeline.storage.queries import alerts as q
from pipeline.storage.store import Store

log = structlog.get_logger(__name__)

HOST = "*"  # the tenant of an alert about the machine, not about one tenant's jobs


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    title: str
    unit: str
    advice: str  # the seed's words, then ours


RULES = {
    "job_failure_rate": Rule("job_failure_rate", "Job failure rate", "%",
                             "API 키 확인, Rate Limit 확인: check the company's API key and its Freshdesk rate limit"),
    "rate_limit_use": Rule("rate_limit_use", "Rate-limit use", "%",
                           "batch_size 줄이기: lower the job's batch_size and parallel_workers"),
    "queue_wait": Rule("queue_wait", "Queue wait", "min",
                       "리소스 부족 확인: the workers are short; start another (`streamdesk worker`)"),
    "memory": Rule("memory", "Memory use", "%", "스케일 업 고려: consider scaling up (more memory, or split the load)"),
}


NOTHING = {"job_failure_rate": "no job finished in the window", "rate_limit_use": "no job is running",
           "queue_wait": "no job is queued", "memory": "not measured yet"}


@dataclass(frozen=True, slots=True)
class AlertState:
    name: str
    tenant: str
    value: float
    threshold: float
    firing: bool
    since: datetime | None  # when it turned on (None while off)
    detail: str
    checked_at: datetime

    @property
    def rule(self) -> Rule:
        return RULES[self.name]


def memory_use_percent() -> tuple[float, str]:
    """Memory in use as % of the limit: the cgroup's (a container) when it has one, else the machine's."""
    cg = Path("/sys/fs/cgroup")
    try:
        limit = (cg / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cg / "memory.current").read_text())
            return 100 * used / int(limit), f"{used >> 20} MiB of the container's {int(limit) >> 20} MiB"
    except (OSError, ValueError):
        pass
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        info[key] = int(rest.split()[0]) * 1024
    total, available = info["MemTotal"], info.get("MemAvailable", info.get("MemFree", 0))
    return 100 * (total - available) / total, f"{(total - available) >> 20} MiB of {total >> 20} MiB"


class Alerts:
    def __init__(self, settings: Settings, store: Store,
                 memory: Callable[[], tuple[float, str]] = memory_use_percent) -> None:
        self.settings = settings
        self.store = store
        self.memory = memory
        self.states: dict[tuple[str, str], AlertState] = {}
        self._task = BackgroundTask("alerts")

    def start(self) -> None:
        self._task.start(every(self.settings.alert_interval_s, self.evaluate, "alerts", first_now=True))

    async def stop(self) -> None:
        await self._task.stop()

    async def evaluate(self, now: datetime | None = None) -> list[AlertState]:
        """Recompute every alert; returns the states (each tenant with jobs, and the host)."""
        now = now or datetime.now(UTC)
        s = self.settings
        fresh: dict[tuple[str, str], tuple[float, float, str]] = {}
        for tenant, failed, finished in await self.store.run(q.job_outcomes, now - timedelta(seconds=s.alert_window_s)):
            fresh["job_failure_rate", tenant] = (100 * failed / finished, s.alert_job_failure_percent,
                                                 f"{failed} of {finished} jobs failed in the last "
                                                 f"{s.alert_window_s / 60:g} min")
        for tenant, use, domain in await self.store.run(q.rate_budget_use):
            fresh["rate_limit_use", tenant] = (use, s.alert_rate_limit_percent, f"{domain}: {use:g} % of its budget")
        for tenant, oldest, job_id, queued in await self.store.run(q.oldest_queued):
            wait = (now - oldest).total_seconds() / 60
            fresh["queue_wait", tenant] = (wait, s.alert_queue_wait_s / 60,
                                           f"{queued} queued; job {job_id} has waited {wait:.0f} min")
        used, how = self.memory()
        fresh["memory", HOST] = (used, s.alert_memory_percent, how)
        return self._update(fresh, now)

    def _update(self, fresh: dict[tuple[str, str], tuple[float, float, str]], now: datetime) -> list[AlertState]:
        for key in set(self.states) - set(fresh):  # nothing to measure any more (no jobs left): off, then gone
            old = self.states[key]
            if old.firing:
                log.warning("alert_off", alert=key[0], tenant=key[1], detail="nothing to measure now")
            del self.states[key]
        for (name, tenant), (value, threshold, detail) in fresh.items():
            firing = value > threshold
            old = self.states.get((name, tenant))
            since = (old.since if old and old.firing else now) if firing else None
            if old is not None and old.firing != firing:
                log.warning("alert_on" if firing else "alert_off", alert=name, tenant=tenant, value=round(value, 1),
                            threshold=threshold, detail=detail)
            self.states[name, tenant] = AlertState(name, tenant, round(value, 2), threshold, firing, since, detail, now)
        # /metrics is public: per alert, how many tenants it is on for and the worst figure, never who.
        for name in RULES:
            states = [a for a in self.states.values() if a.name == name]
            ALERT_FIRING.labels(name).set(sum(a.firing for a in states))
            ALERT_VALUE.labels(name).set(max((a.value for a in states), default=0.0))
        return self.visible(None)

    def thresholds(self) -> dict[str, float]:
        """Each alert's threshold, in its rule's unit."""
        s = self.settings
        return {"job_failure_rate": s.alert_job_failure_percent, "rate_limit_use": s.alert_rate_limit_percent,
                "queue_wait": s.alert_queue_wait_s / 60, "memory": s.alert_memory_percent}

    def visible(self, tenant: str | None) -> list[AlertState]:
        """The states a reader may see: every one for a system_admin (tenant None), else its tenant's jobs; an
        alert with nothing to measure for this reader is listed too, off, saying so."""
        states = [a for a in self.states.values() if tenant is None or a.tenant == tenant]
        seen = {a.name for a in states}
        now = datetime.now(UTC)
        for name, threshold in self.thresholds().items():
            if name not in seen and (tenant is None or name != "memory"):
                states.append(AlertState(name, tenant or "all", 0.0, threshold, False, None, NOTHING[name], now))
        return sorted(states, key=lambda a: (not a.firing, list(RULES).index(a.name), a.tenant))


def age(since: datetime | None, now: float | None = None) -> str:
    """'3 min' since an alert turned on, for people."""
    if since is None:
        return ""
    seconds = (now or time.time()) - since.timestamp()
    if seconds < 90:
        return f"{max(0, seconds):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
