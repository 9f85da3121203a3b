"""The baselines' keyed table: sys_api_call_histories with the (tenant_id, api_call_history_id) key it had
before issue 10, so a replay is dropped by `INSERT OR IGNORE`, the way such an app would be written."""

from pipeline.storage.schema import DDL

KEY = "created_at TIMESTAMPTZ,\n        PRIMARY KEY (tenant_id, api_call_history_id)\n"
KEYED_DDL = DDL[0].replace("created_at TIMESTAMPTZ\n", KEY, 1)
assert "PRIMARY KEY" in KEYED_DDL, "sys_api_call_histories' DDL changed shape: fix the keyed baselines"
