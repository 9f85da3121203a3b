"""A job's detail shows its latest log lines and, before them, who started it and what went wrong: one line per
published batch must not push "Job started on <worker>" (a takeover's evidence) or a warning out of view."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.storage.queries.ingest import logs


def test_lifecycle_lines_and_warnings_stay_in_view_beside_the_latest_lines(materializer):
    now = datetime.now(UTC)
    lines = [("Job started on host:1", "INFO"), *((f"Successfully processed ticket batch {i}", "INFO")
                                                   for i in range(1, 60)),
             ("Rate limit approaching, adding delay", "WARN"), ("Job started on host:2", "INFO"),
             *((f"Successfully processed ticket batch {i}", "INFO") for i in range(60, 100))]
    materializer.con.executemany("INSERT INTO ingest_job_logs VALUES ('j', ?, 0, ?, ?, ?, NULL)",
                                 [(seq, now, level, message) for seq, (message, level) in enumerate(lines)])
    shown = [line["message"] for line in logs(materializer.con.cursor(), "j", 20)]
    assert shown[:3] == ["Job started on host:1", "Rate limit approaching, adding delay", "Job started on host:2"]
    assert shown[3:] == [f"Successfully processed ticket batch {i}" for i in range(80, 100)]  # the latest 20
    assert [line["message"] for line in logs(materializer.con.cursor(), "other", 20)] == []
