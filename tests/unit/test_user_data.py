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
