"""Recurring collection (seed 000 "매일 새벽 2시"): a schedule fires an incremental job at its cron time in its
time zone, never while a job of the domain is still active, once (not once per missed time) after the api was
down; it is listed and cancellable by its company only, and a bad cron or zone is a 422 naming it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.ingest.jobs import Jobs
from api.ingest.schedules import IngestSchedules
from api.main import create_app
from api.services import Services
from pipeline.security import Role, mint_token
from pipeline.storage.queries import ingest as jq
from pipeline.storage.store import Store
from schemas.ingest import JobOptions, ScheduleSpec

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # 21:00 in Seoul
DAILY_2AM_SEOUL = ScheduleSpec(cron="0 2 * * *", timezone="Asia/Seoul")


class Sent:
    def __init__(self) -> None:
        self.commands: list = []

    async def send(self, topic: str, value: bytes, key: bytes) -> None:
        self.commands.append((topic, value, key))


@pytest.fixture
def schedules(materializer):
    store = Store(materializer.con)
    jobs = Jobs(materializer.settings, store, Sent())
    token = jobs.fernet.encrypt(b"the-company-key").decode()
    store.call(jq.insert_job, {"job_id": "first", "tenant": "acme", "platform": "freshdesk",
                               "domain": "acme.freshdesk.com", "status": "completed", "priority": "normal",
                               "options": {}, "api_key_token": token, "created_at": NOW, "seq": 0,
                               "cursor": {"updated_at": "2026-12-01T00:00:00Z", "ids": [7]}})
    return IngestSchedules(materializer.settings, store, jobs)


def _run(coro):
    return asyncio.run(coro)


def _first_job(s: IngestSchedules) -> dict:
    return s.store.call(jq.get_job, "first", "acme")


def test_a_daily_2am_seoul_schedule_fires_an_incremental_job_at_17_utc(schedules):
    opts = JobOptions(incremental=False, batch_size=100, include_kb=False)
    row = _run(schedules.create(_first_job(schedules), opts, DAILY_2AM_SEOUL, NOW))
    assert row["next_run_at"] == datetime(2026, 12, 7, 17, 0, tzinfo=UTC)  # 02:00 KST is 17:00 UTC the day before
    assert row["options"]["incremental"] is True and row["options"]["batch_size"] == 100
    assert b"the-company-key" not in str(schedules.store.con.execute(
        "SELECT * FROM ingest_schedules").fetchall()).encode()  # the key rests encrypted only
    assert _run(schedules.fire_due(NOW + timedelta(hours=4))) == []  # 16:00 UTC: not yet
    fired = _run(schedules.fire_due(NOW + timedelta(hours=5, seconds=10)))
    assert len(fired) == 1
    job = schedules.store.call(jq.get_job, fired[0][1], "acme")
    assert job["status"] == "queued" and job["options"]["incremental"] is True
    assert job["cursor"] == {"updated_at": "2026-12-01T00:00:00Z", "ids": [7]}  # from the domain's last cursor
    assert len(schedules.jobs.publisher.commands) == 1  # and its run command went to the worker
    after = schedules.store.call(lambda cur: cur.execute("SELECT runs, next_run_at, last_job_id FROM "
                                                         "ingest_schedules").fetchone())
    assert after[0] == 1 and after[1] == datetime(2026, 12, 8, 17, 0, tzinfo=UTC) and after[2] == fired[0][1]


def test_never_two_collections_of_one_domain_at_once(schedules):
    _run(schedules.create(_first_job(schedules), JobOptions(), DAILY_2AM_SEOUL, NOW))
    schedules.store.con.execute("UPDATE ingest_jobs SET status = 'running' WHERE job_id = 'first'")
    fired = _run(schedules.fire_due(NOW + timedelta(hours=6)))
    assert fired[0][1].startswith("skipped") and "first" in fired[0][1]
    assert schedules.store.con.execute("SELECT count(*) FROM ingest_jobs").fetchone()[0] == 1
    assert schedules.jobs.publisher.commands == []
    skipped, next_run = schedules.store.con.execute("SELECT skipped, next_run_at FROM ingest_schedules").fetchone()
    assert skipped == 1 and next_run == datetime(2026, 12, 8, 17, 0, tzinfo=UTC)


def test_an_api_down_for_days_fires_a_missed_schedule_once(schedules):
    _run(schedules.create(_first_job(schedules), JobOptions(), DAILY_2AM_SEOUL, NOW))
    back = NOW + timedelta(days=3)
    assert len(_run(schedules.fire_due(back))) == 1
    assert _run(schedules.fire_due(back + timedelta(minutes=1))) == []  # the next one is tomorrow, not now


def test_a_cancelled_schedule_fires_no_more(schedules):
    row = _run(schedules.create(_first_job(schedules), JobOptions(), DAILY_2AM_SEOUL, NOW))
    cancelled = _run(schedules.cancel("acme", row["schedule_id"]))
    assert cancelled["status"] == "cancelled" and cancelled["next_run_at"] is None
    assert _run(schedules.fire_due(NOW + timedelta(days=2))) == []


@pytest.mark.parametrize(("spec", "says"), [({"cron": "0 25 * * *"}, "cron"), ({"cron": "0 2 * * * *"}, "cron"),
                                            ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "time zone"),
                                            ({"cron": "0 2 * * *", "every": "day"}, "Extra"),
                                            ("daily", "valid dictionary")])
def test_a_bad_schedule_is_refused_naming_what_is_wrong(spec, says):
    with pytest.raises(ValueError, match=says):
        ScheduleSpec.model_validate(spec)


def test_schedules_are_listed_and_cancelled_by_their_company_only(schedules, materializer):
    row = _run(schedules.create(_first_job(schedules), JobOptions(), DAILY_2AM_SEOUL, NOW))
    app = create_app(materializer.settings)
    app.state.services = Services.build(materializer.settings, schedules.store)  # built, never started
    client = TestClient(app)
    key = materializer.settings.jwt_key()
    own = {"Authorization": f"Bearer {mint_token(key, 'u', 'acme', [Role.IAM_ADMIN])}"}
    other = {"Authorization": f"Bearer {mint_token(key, 'u', 'globex', [Role.IAM_ADMIN])}"}
    listed = client.get("/ingest/schedules", headers=own).json()["schedules"]
    assert [s["schedule_id"] for s in listed] == [row["schedule_id"]] and listed[0]["cron"] == "0 2 * * *"
    assert client.get("/ingest/schedules", headers=other).json() == {"schedules": []}
    assert client.delete(f"/ingest/schedules/{row['schedule_id']}", headers=other).status_code == 404
    assert client.get("/ingest/schedules").status_code == 401
    done = client.delete(f"/ingest/schedules/{row['schedule_id']}", headers=own)
    assert done.status_code == 200 and done.json()["status"] == "cancelled"


def test_a_company_keeps_at_most_twenty_active_schedules(schedules):
    from api.errors import ApiError
    from api.ingest.schedules import MAX_ACTIVE_PER_COMPANY

    rows = [_run(schedules.create(_first_job(schedules), JobOptions(), DAILY_2AM_SEOUL, NOW))
            for _ in range(MAX_ACTIVE_PER_COMPANY)]
    with pytest.raises(ApiError) as refused:
        _run(schedules.check_room("acme"))
    assert refused.value.status == 409
    _run(schedules.check_room("globex"))  # another company is not counted
    _run(schedules.cancel("acme", rows[0]["schedule_id"]))
    _run(schedules.check_room("acme"))  # a cancelled one frees its place


def test_a_run_that_cannot_be_started_is_recorded_and_does_not_block_the_next(schedules):
    _run(schedules.create(_first_job(schedules), JobOptions(), DAILY_2AM_SEOUL, NOW))

    async def broker_away(cmd) -> None:
        raise ConnectionError("no broker")

    schedules.jobs.send = broker_away
    fired = _run(schedules.fire_due(NOW + timedelta(hours=6)))
    assert fired[0][1].startswith("skipped: the run could not be started")
    failed = schedules.store.con.execute("SELECT status, error FROM ingest_jobs WHERE job_id <> 'first'").fetchone()
    assert failed[0] == "failed" and "could not be started" in failed[1]
    del schedules.jobs.send  # the broker is back
    again = _run(schedules.fire_due(NOW + timedelta(days=1, hours=6)))
    assert len(again) == 1 and not again[0][1].startswith("skipped")  # the failed run does not hold the domain


def test_a_job_left_queued_never_started_stops_holding_the_domain_after_ten_minutes(schedules):
    _run(schedules.create(_first_job(schedules), JobOptions(), DAILY_2AM_SEOUL, NOW))
    due = NOW + timedelta(hours=6)
    schedules.store.con.execute("UPDATE ingest_jobs SET status = 'queued', created_at = ? WHERE job_id = 'first'",
                                [due - timedelta(minutes=5)])
    assert _run(schedules.fire_due(due))[0][1].startswith("skipped")  # queued 5 min ago: it may still start
    schedules.store.con.execute("UPDATE ingest_jobs SET created_at = ? WHERE job_id = 'first'",
                                [due - timedelta(hours=3)])
    fired = _run(schedules.fire_due(due + timedelta(days=1)))
    assert not fired[0][1].startswith("skipped")  # queued for hours, never started (auto_start false): not busy


def test_a_resumed_or_taken_over_job_keeps_the_priority_it_was_changed_to(schedules):
    schedules.store.con.execute("UPDATE ingest_jobs SET priority = 'urgent' WHERE job_id = 'first'")
    command = _run(schedules.jobs.resume_command(_first_job(schedules), "resume"))
    assert command.priority.value == "urgent"
