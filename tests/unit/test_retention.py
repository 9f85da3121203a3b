"""Retention (api/retention.py) on a real DuckDB file: what is older than its family's setting goes, in small
transactions; what is younger, on hold, or of a family kept for ever stays."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from api.retention import Retention
from pipeline.metrics import ROWS_EXPIRED
from pipeline.storage.store import Store

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _seed(con) -> None:
    for i in range(12):  # 7 calls older than 90 days, 5 younger
        con.execute("INSERT INTO sys_api_call_histories (api_call_history_id, tenant_id, method, path, status_code, "
                    "created_at) VALUES (?, '1', 'GET', '/x', 200, ?)", [f"c{i}", NOW - timedelta(days=91 if i < 7
                                                                                            else 89)])
    for i, age in enumerate((31, 29)):
        con.execute("INSERT INTO dead_letters (dead_letter_id, error, rejected_at) VALUES (?, 'bad', ?)",
                    [f"d{i}", NOW - timedelta(days=age)])
        con.execute("INSERT INTO ingest_job_logs (job_id, seq, n, timestamp, level, message) VALUES "
                    "('j', ?, 0, ?, 'info', 'm')", [i, NOW - timedelta(days=age)])
    for user, policy, archived in (("old5", "STANDARD_5_YEARS", date(2021, 12, 1)),
                                   ("new5", "STANDARD_5_YEARS", date(2022, 1, 1)),
                                   ("old10", "EXTENDED_10_YEARS", date(2014, 1, 1)),
                                   ("hold", "LEGAL_HOLD", date(2001, 1, 1))):
        con.execute("INSERT INTO user_archives (tenant, user_id, status, retention_policy, archive_date) "
                    "VALUES ('t', ?, 'ARCHIVED', ?, ?)", [user, policy, archived])
        con.execute("INSERT INTO archive_predictions (tenant, user_id) VALUES ('t', ?)", [user])
        con.execute("INSERT INTO archived_rows (tenant, user_id, table_name) VALUES ('t', ?, 'predictions')", [user])


def _count(con, sql: str) -> int:
    return int(con.execute(sql).fetchone()[0])


def test_a_sweep_deletes_what_its_family_no_longer_keeps_in_small_transactions(materializer):
    con = materializer.con
    _seed(con)
    before = ROWS_EXPIRED.labels("sys_api_call_histories")._value.get()
    retention = Retention(materializer.settings, Store(con), chunk=3)  # 7 old calls: three transactions
    deleted = asyncio.run(retention.run_once(NOW))
    assert deleted == {"sys_api_call_histories": 7, "dead_letters": 1, "ingest_job_logs": 1, "archives": 4}
    assert ROWS_EXPIRED.labels("sys_api_call_histories")._value.get() - before == 7
    assert _count(con, "SELECT count(*) FROM sys_api_call_histories") == 5
    assert {r[0] for r in con.execute("SELECT api_call_history_id FROM sys_api_call_histories").fetchall()} == {
        f"c{i}" for i in range(7, 12)}
    assert [r[0] for r in con.execute("SELECT dead_letter_id FROM dead_letters").fetchall()] == ["d1"]
    assert [r[0] for r in con.execute("SELECT seq FROM ingest_job_logs").fetchall()] == [1]
    status = dict(con.execute("SELECT user_id, status FROM user_archives").fetchall())
    assert status == {"old5": "EXPIRED", "new5": "ARCHIVED", "old10": "EXPIRED", "hold": "ARCHIVED"}
    kept = {r[0] for r in con.execute("SELECT user_id FROM archive_predictions").fetchall()}
    assert kept == {"new5", "hold"}
    assert {r[0] for r in con.execute("SELECT user_id FROM archived_rows").fetchall()} == {"new5", "hold"}
    assert asyncio.run(retention.run_once(NOW)) == {"sys_api_call_histories": 0, "dead_letters": 0,
                                                    "ingest_job_logs": 0, "archives": 0}


def test_a_family_set_to_zero_days_is_kept_for_ever(materializer):
    con = materializer.con
    _seed(con)
    settings = materializer.settings.model_copy(update={"retention_calls_days": 0, "retention_dead_letters_days": 0})
    deleted = asyncio.run(Retention(settings, Store(con)).run_once(NOW))
    assert "sys_api_call_histories" not in deleted and "dead_letters" not in deleted
    assert _count(con, "SELECT count(*) FROM sys_api_call_histories") == 12
    assert _count(con, "SELECT count(*) FROM dead_letters") == 2
