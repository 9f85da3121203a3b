"""A DuckDB file from before key confirmation opens with `company_keys` rebuilt: several keys per domain (rotation),
and the old, never-confirmed keys kept but opening nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from pipeline.storage.db import connect
from pipeline.storage.queries import ingest as q

OLD_COMPANY_KEYS = """CREATE TABLE company_keys (tenant VARCHAR, platform VARCHAR, domain VARCHAR, key_hash VARCHAR,
    created_at TIMESTAMPTZ, PRIMARY KEY (tenant, platform, domain))"""


def test_old_keys_are_kept_unconfirmed_and_a_domain_can_hold_a_second_key(tmp_path):
    path = tmp_path / "old.duckdb"
    old = duckdb.connect(str(path))
    old.execute(OLD_COMPANY_KEYS)
    old.execute("INSERT INTO company_keys VALUES ('acme', 'freshdesk', 'acme.freshdesk.com', 'h-old', ?)",
                [datetime(2026, 1, 1, tzinfo=UTC)])
    old.close()
    con = connect(path)
    try:
        rows = con.execute("SELECT tenant, domain, key_hash, verified_at FROM company_keys").fetchall()
        assert rows == [("acme", "acme.freshdesk.com", "h-old", None)]
        assert q.verified_keys(con, "acme") == []  # never confirmed: opens nothing
        q.remember_key(con, "acme", "freshdesk", "acme.freshdesk.com", "h-new")
        q.remember_key(con, "acme", "freshdesk", "acme.freshdesk.com", "h-old")  # confirmed now
        assert sorted(q.verified_keys(con, "acme", "freshdesk", "acme.freshdesk.com")) == ["h-new", "h-old"]
        assert q.bound_domains(con, "acme", "freshdesk") == []  # unconfirmed keys bound nothing
    finally:
        con.close()
    again = connect(path)  # a second open finds the new shape and leaves it alone
    try:
        assert again.execute("SELECT count(*) FROM company_keys WHERE verified_at IS NOT NULL").fetchone() == (2,)
    finally:
        again.close()
