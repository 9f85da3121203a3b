"""Seed 000's four alerts (api/alerts.py) on a real DuckDB file: each driven over its threshold turns on (with
its since-when and the seed's advice), stays on with the same since, and turns off after recovery; the
Prometheus gauges follow, without naming tenants (/metrics is public); a tenant sees its own alerts only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson

from api.alerts import HOST, NOTHING, Alerts
from pipeline.metrics import ALERT_FIRING
from pipeline.storage.store import Store

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _job(con, job_id: str, tenant: str, status: str, *, created=NOW, completed=None, use=None) -> None:
    con.execute("INSERT INTO ingest_jobs (job_id, tenant, platform, domain, status, priority, created_at, "
                "completed_at, statistics) VALUES (?, ?, 'freshdesk', 'acme.freshdesk.com', ?, 'normal', ?, ?, ?)",
                [job_id, tenant, status, created, completed,
                 orjson.dumps({"rate_limit_usage": use}).decode() if use is not None else None])


def _state(alerts: Alerts, name: str, tenant: str):
    """The alert's state for the tenant, as the console lists it (off, with nothing to measure, when unknown)."""
    return next(a for a in alerts.visible(None if tenant == HOST else tenant) if (a.name, a.tenant) == (name, tenant)
                or (a.name == name and (name, tenant) not in alerts.states))


def _alerts(materializer, memory=(10.0, "10 %")) -> Alerts:
    probe = {"value": memory}
    alerts = Alerts(materializer.settings, Store(materializer.con), memory=lambda: probe["value"])
    alerts.probe = probe  # the test moves the machine's memory
    return alerts


def test_job_failure_rate_turns_on_over_5_percent_and_off_after_recovery(materializer):
    con = materializer.con
    alerts = _alerts(materializer)
    for i in range(19):
        _job(con, f"ok{i}", "1", "completed", completed=NOW - timedelta(minutes=5))
    _job(con, "bad0", "1", "failed", completed=NOW - timedelta(minutes=4))  # 1 of 20 = 5 %: not over
    asyncio.run(alerts.evaluate(NOW))
    assert not _state(alerts, "job_failure_rate", "1").firing
    _job(con, "bad1", "1", "failed", completed=NOW - timedelta(minutes=3))  # 2 of 21 = 9.5 %
    asyncio.run(alerts.evaluate(NOW))
    on = _state(alerts, "job_failure_rate", "1")
    assert on.firing and on.since == NOW and on.value == round(200 / 21, 2)
    assert "API 키 확인" in on.rule.advice and "2 of 21 jobs failed" in on.detail
    assert ALERT_FIRING.labels("job_failure_rate")._value.get() == 1  # on for one tenant: which is not said
    assert "tenant" not in ALERT_FIRING._labelnames
    later = NOW + timedelta(seconds=10)
    asyncio.run(alerts.evaluate(later))
    assert _state(alerts, "job_failure_rate", "1").since == NOW  # still on since it first turned on
    # Recovery: the failures leave the window (one hour) while successes keep coming.
    recovered = NOW + timedelta(minutes=61)
    _job(con, "ok-late", "1", "completed", completed=recovered - timedelta(minutes=1))
    asyncio.run(alerts.evaluate(recovered))
    off = _state(alerts, "job_failure_rate", "1")
    assert not off.firing and off.since is None
    assert ALERT_FIRING.labels("job_failure_rate")._value.get() == 0


def test_cancelled_jobs_are_not_failures(materializer):
    alerts = _alerts(materializer)
    _job(materializer.con, "c1", "1", "cancelled", completed=NOW)
    _job(materializer.con, "ok", "1", "completed", completed=NOW)
    asyncio.run(alerts.evaluate(NOW))
    assert _state(alerts, "job_failure_rate", "1").value == 0


def test_rate_limit_use_over_80_percent(materializer):
    con = materializer.con
    alerts = _alerts(materializer)
    _job(con, "r1", "1", "running", use=79.5)
    asyncio.run(alerts.evaluate(NOW))
    assert not _state(alerts, "rate_limit_use", "1").firing
    con.execute("UPDATE ingest_jobs SET statistics = '{\"rate_limit_usage\": 91.0}' WHERE job_id = 'r1'")
    asyncio.run(alerts.evaluate(NOW))
    on = _state(alerts, "rate_limit_use", "1")
    assert on.firing and on.value == 91.0 and "batch_size" in on.rule.advice
    con.execute("UPDATE ingest_jobs SET status = 'completed' WHERE job_id = 'r1'")  # no running job: nothing used
    asyncio.run(alerts.evaluate(NOW))
    assert not _state(alerts, "rate_limit_use", "1").firing


def test_queue_wait_over_30_minutes(materializer):
    con = materializer.con
    alerts = _alerts(materializer)
    _job(con, "q1", "2", "queued", created=NOW - timedelta(minutes=29))
    asyncio.run(alerts.evaluate(NOW))
    assert not _state(alerts, "queue_wait", "2").firing
    asyncio.run(alerts.evaluate(NOW + timedelta(minutes=2)))  # the same job, now 31 min in the queue
    on = _state(alerts, "queue_wait", "2")
    assert on.firing and "q1" in on.detail and "리소스 부족" in on.rule.advice
    con.execute("UPDATE ingest_jobs SET status = 'running' WHERE job_id = 'q1'")
    asyncio.run(alerts.evaluate(NOW + timedelta(minutes=3)))
    assert not _state(alerts, "queue_wait", "2").firing


def test_memory_over_80_percent_and_back(materializer):
    alerts = _alerts(materializer)
    asyncio.run(alerts.evaluate(NOW))
    assert not _state(alerts, "memory", HOST).firing
    alerts.probe["value"] = (85.0, "85 %")
    asyncio.run(alerts.evaluate(NOW))
    assert _state(alerts, "memory", HOST).firing
    alerts.probe["value"] = (40.0, "40 %")
    asyncio.run(alerts.evaluate(NOW))
    assert not _state(alerts, "memory", HOST).firing


def test_thresholds_are_settings_and_a_tenant_sees_its_own(materializer):
    materializer.settings = materializer.settings.model_copy(update={"alert_memory_percent": 5.0})
    alerts = _alerts(materializer)
    _job(materializer.con, "a", "1", "failed", completed=NOW)
    _job(materializer.con, "b", "2", "failed", completed=NOW)
    asyncio.run(alerts.evaluate(NOW))
    assert _state(alerts, "memory", HOST).firing  # 10 % used, threshold set to 5 %
    mine = alerts.visible("1")
    assert {a.tenant for a in mine} == {"1"}  # tenant 2's failure is not shown to tenant 1
    assert {(a.name, a.firing) for a in mine if a.detail not in NOTHING.values()} == {("job_failure_rate", True)}
    # Every job alert is listed, the ones with nothing to measure too, and the host's memory is not a tenant's.
    assert {a.name for a in mine} == {"job_failure_rate", "rate_limit_use", "queue_wait"}
    assert {a.tenant for a in alerts.visible(None) if a.detail not in NOTHING.values()} == {"1", "2", HOST}


def test_the_real_memory_probe_reads_this_machine():
    from api.alerts import memory_use_percent

    used, how = memory_use_percent()
    assert 0 < used < 100 and "MiB" in how
