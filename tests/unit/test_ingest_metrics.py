"""`GET /ingest/metrics`'s data-quality block from stored rows: each company sees its own rates only."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from api.ingest.metrics import data_quality
from pipeline.storage.db import connect
from pipeline.storage.queries.ingest import quality_counts


def test_refused_records_count_for_the_company_they_name_only(tmp_path):
    con = connect(tmp_path / "m.duckdb")
    cur = con.cursor()
    now = datetime.now(UTC)
    for tenant, n in (("acme", 8), ("globex", 2)):
        for i in range(n):
            cur.execute("INSERT INTO tickets (key, tenant, platform, domain, source_id, updated_at, subject, "
                        "description_text) VALUES (?, ?, 'freshdesk', 'd', ?, ?, 's', ?)",
                        [f"{tenant}:freshdesk:ticket:{i}", tenant, str(i), now, "" if i == 0 else "text"])
    letters = [orjson.dumps({"tenant": "acme", "kind": "ticket", "record": {"id": "x"}})] * 2
    letters += [orjson.dumps({"tenant": "globex", "kind": "ticket", "record": {}}), b"\xff not json"]
    for offset, value in enumerate(letters):
        cur.execute("INSERT INTO dead_letters (dead_letter_id, error, topic, \"partition\", \"offset\", rejected_at, "
                    "value) VALUES (?, 'bad', 'tickets.raw', 0, ?, ?, ?)", [f"dl{offset}", offset, now, value])
    acme, globex = data_quality(quality_counts(cur, "acme")), data_quality(quality_counts(cur, "globex"))
    assert acme["validation_error_rate"] == 20.0 and acme["missing_fields_rate"] == 12.5
    assert globex["validation_error_rate"] == 33.3 and globex["missing_fields_rate"] == 50.0
    assert data_quality(quality_counts(cur, "initech"))["validation_error_rate"] == 0.0  # the garbage names nobody
