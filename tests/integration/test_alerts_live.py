"""Seed 000's alerts in the running api (real broker, lifespan started, no worker): the loop evaluates them on
its own, the console and /metrics show an alert turning on within the evaluation interval and off after the
cause is gone (a failed job ages out of the window, memory falls under its threshold)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.security import Role, mint_token
from tests.helpers import wait_for
from tests.integration.conftest import api_on

pytestmark = pytest.mark.integration


def _firing(client, alert: str, tenant: str) -> bool:
    """On for the tenant on the console (signed in), and counted on the public /metrics without its name."""
    page = client.get("/console/alerts").text
    row = page.split(f'data-alert="{alert}" data-tenant="{tenant}"', 1)
    on = len(row) == 2 and 'class="firing"' in row[0].rsplit("<tr", 1)[-1]
    metrics = client.get("/metrics").text
    assert f'tenant="{tenant}"' not in metrics
    counted = f'streamdesk_alert_firing{{alert="{alert}"}} 0.0' not in metrics
    return on and counted


def test_alerts_turn_on_and_off_in_the_running_api(broker, tmp_path):
    with api_on(broker.bootstrap, tmp_path, "alerts", worker=False, alert_interval_s=0.2,
                alert_window_s=60.0) as api:
        services = api.app.state.services
        token = mint_token(api.settings.jwt_key(), "ops", "ops", [Role.SYSTEM_ADMIN])
        assert api.post("/console/login", data={"token": token}, follow_redirects=False).status_code == 303

        # A failed job of tenant "acme" in the last minute: failure rate 100 % > 5 %.
        now = datetime.now(UTC)
        services.store.con.cursor().execute(
            "INSERT INTO ingest_jobs (job_id, tenant, platform, domain, status, priority, created_at, completed_at, "
            "seq) VALUES ('bad', 'acme', 'freshdesk', 'acme.freshdesk.com', 'failed', 'normal', ?, ?, 0)",
            [now, now])
        wait_for(lambda: _firing(api, "job_failure_rate", "acme"), 30, "the failure-rate alert on")
        page = api.get("/console/alerts").text
        assert 'data-alert="job_failure_rate" data-tenant="acme"' in page and "API 키 확인" in page
        # Recovery: the failure leaves the window.
        services.store.con.cursor().execute("UPDATE ingest_jobs SET completed_at = ? WHERE job_id = 'bad'",
                                   [now - timedelta(minutes=5)])
        wait_for(lambda: not _firing(api, "job_failure_rate", "acme"), 30, "the failure-rate alert off")

        # Memory: a threshold under what the machine uses, then back to the default.
        services.alerts.settings = api.settings.model_copy(update={"alert_memory_percent": 0.5})
        wait_for(lambda: _firing(api, "memory", "*"), 30, "the memory alert on")
        services.alerts.settings = api.settings
        wait_for(lambda: not _firing(api, "memory", "*"), 30, "the memory alert off")
