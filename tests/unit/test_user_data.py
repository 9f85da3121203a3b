"""Archive, restore and erasure of one user's data, asked for at the same time (two admins, a retried request,
a fuzzer with two workers): every call succeeds and the user ends in one consistent state."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

from pipeline.storage.db import connect, run_on_cursor
from pipeline.storage.queries import user_data


def test_archives_and_restores_of_one_user_at_the_same_time_all_succeed_and_lose_no_row(tmp_path):
    con = connect(tmp_path / "streamdesk.duckdb")
    con.executemany("INSERT INTO sleep_records VALUES (?, 't', 'u', 'diary', ?, '{}', ?)",
                    [(f"k{d}", date(2026, 11, d), datetime.now(UTC)) for d in range(1, 11)])
    errors: list[str] = []

    def admin(k: int) -> None:
        for i in range(30):
            try:
                if (i + k) % 2:
                    run_on_cursor(con, user_data.archive, "t", "u", "r", "STANDARD_5_YEARS", date(2026, 12, 7))
                else:
                    run_on_cursor(con, user_data.restore, "t", "u")
            except Exception as exc:  # noqa: BLE001 - each failure is the finding
                errors.append(str(exc))

    threads = [threading.Thread(target=admin, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []  # before archive/restore/erase were serialised: "Conflict on update!" after five tries
    hot = con.execute("SELECT count(*) FROM sleep_records WHERE user_id = 'u'").fetchone()[0]
    archived = con.execute("SELECT count(*) FROM archive_sleep_records WHERE user_id = 'u'").fetchone()[0]
    status = run_on_cursor(con, user_data.archive_status, "t", "u")
    assert (hot, archived) == ((10, 0) if status == "RESTORED" else (0, 10))
    con.close()


def test_an_archive_with_nothing_to_archive_changes_nothing(tmp_path):
    """The route answers COD_004; the user must not be left marked archived with their schedules paused."""
    con = connect(tmp_path / "streamdesk.duckdb")
    con.execute("INSERT INTO prediction_schedules (schedule_id, tenant, user_id, status) VALUES ('s1', 't', 'u', "
                "'SCHEDULED')")
    moved = run_on_cursor(con, user_data.archive, "t", "u", "r", "STANDARD_5_YEARS", date(2026, 12, 7))
    assert sum(moved.values()) == 0
    assert run_on_cursor(con, user_data.archive_status, "t", "u") is None
    assert con.execute("SELECT status FROM prediction_schedules").fetchall() == [("SCHEDULED",)]
    assert run_on_cursor(con, user_data.restore, "t", "u") is None  # nothing archived: nothing to restore
    con.close()


def test_two_restores_at_once_restore_once(tmp_path):
    con = connect(tmp_path / "streamdesk.duckdb")
    con.execute("INSERT INTO sleep_records VALUES ('k1', 't', 'u', 'diary', DATE '2026-11-01', '{}', now())")
    run_on_cursor(con, user_data.archive, "t", "u", "r", "STANDARD_5_YEARS", date(2026, 12, 7))
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(run_on_cursor(con, user_data.restore, "t", "u")))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r is None for r in results) == [False] + [True] * 5  # one 200, five COD_004
    assert [r for r in results if r is not None] == [{"sleep_records": 1, "predictions": 0, "debate_rounds": 0,
                                                      "expert_analyses": 0, "recommendations": 0}]
    con.close()
