"""Seed 000's four alerts driven the way they happen, on the running system (real broker, worker, api and the
Freshdesk simulator), each seen turning on on the console within seconds and off again after recovery:

- queue wait: a job created without auto_start waits past the threshold; starting it ends the wait;
- rate-limit use: another consumer of the same Freshdesk account spends most of its budget while a job runs;
  the job ending ends it;
- job failure rate: the simulator answers every request with a 503 and a job with no retries fails; once the
  failure is out of the window the alert is off;
- memory: a threshold under what the machine uses, then back.
"""

from __future__ import annotations

import httpx
import pytest

from api.main import create_app
from pipeline.security import Role, mint_token
from tests.helpers import checked_client, stop_process, wait_for
from tests.integration.test_ingest_jobs import KEY, _system

pytestmark = pytest.mark.integration


def _company(name: str) -> dict[str, str]:
    return {"X-Company-ID": name, "X-Platform": "freshdesk", "X-Domain": f"{name}.freshdesk.com", "X-API-Key": KEY,
            "Content-Type": "application/json"}


def _on(client, alert: str, tenant: str) -> bool:
    return f'class="firing" data-alert="{alert}" data-tenant="{tenant}"' in client.get("/console/alerts").text


def _control(client, job_id: str, company: dict, action: str) -> None:
    r = client.post(f"/ingest/jobs/{job_id}/control", headers=company, json={"action": action})
    assert r.status_code == 200, r.text


def test_the_four_alerts_turn_on_and_off_as_jobs_and_the_account_behave(broker, tmp_path):
    sim, s, procs = _system(broker, tmp_path, tickets=400, plan=60, alert_interval_s=0.3, alert_window_s=8,
                            alert_queue_wait_s=2)
    try:
        with checked_client(create_app(s)) as c:
            wait_for(lambda: c.get("/health").status_code == 200, 60, "worker and api healthy")
            token = mint_token(s.jwt_key(), "ops", "ops", [Role.SYSTEM_ADMIN])
            assert c.post("/console/login", data={"token": token}, follow_redirects=False).status_code == 303

            # Queue wait: created, not started.
            slow = _company("queued")
            queued = c.post("/ingest/jobs", headers=slow, json={"auto_start": False, "include_kb": False}).json()
            wait_for(lambda: _on(c, "queue_wait", "queued"), 30, "the queue-wait alert on")
            _control(c, queued["job_id"], slow, "start")

            # Rate-limit use: the job now runs (60 credits a minute); another consumer spends the account's budget.
            wait_for(lambda: not _on(c, "queue_wait", "queued"), 30, "the queue-wait alert off once started")
            for _ in range(45):
                httpx.get(f"{sim.base_url}/api/v2/tickets", headers={"Host": "queued.freshdesk.com"},
                          auth=(KEY, "X"), timeout=10)
            wait_for(lambda: _on(c, "rate_limit_use", "queued"), 30, "the rate-limit alert on")
            _control(c, queued["job_id"], slow, "cancel")
            wait_for(lambda: not _on(c, "rate_limit_use", "queued"), 30, "the rate-limit alert off: no job runs")

            # Job failure rate: every Freshdesk answer a 503, and a job that does not retry.
            bad = _company("failing")
            failing = c.post("/ingest/jobs", headers=bad, json={"auto_start": False, "include_kb": False,
                                                                 "max_retries": 0}).json()
            sim.set_faults(error_rate=1.0)
            _control(c, failing["job_id"], bad, "start")
            wait_for(lambda: _on(c, "job_failure_rate", "failing"), 30, "the failure-rate alert on")
            sim.clear_faults()
            wait_for(lambda: not _on(c, "job_failure_rate", "failing"), 30, "off once the failure left the window")

            # Memory: a threshold under what the machine uses, then the default again.
            alerts = c.app.state.services.alerts
            alerts.settings = s.model_copy(update={"alert_memory_percent": 0.5})
            wait_for(lambda: _on(c, "memory", "*"), 30, "the memory alert on")
            alerts.settings = s
            wait_for(lambda: not _on(c, "memory", "*"), 30, "the memory alert off")
    finally:
        for p in procs:
            stop_process(p)
        sim.stop()
