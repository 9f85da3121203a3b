"""What the baselines share with the pipeline's own writer, so a comparison is not won by a setting.

KEYED_DDL: sys_api_call_histories with the (tenant_id, api_call_history_id) key it had before issue 10, so a
replay is dropped by `INSERT OR IGNORE`, the way such an app would be written. DUCKDB_CONFIG: the pipeline's
checkpoint threshold (pipeline/storage/db.py says why it is not DuckDB's 16 MB default).
"""

from pipeline.storage.schema import DDL

# The value of pipeline.storage.db.WRITER_CHECKPOINT_THRESHOLD, written out: the quix venv cannot import that
# module's dependencies. bench/calls.py checks the two agree.
DUCKDB_CONFIG = {"checkpoint_threshold": "64MB"}

# The baselines leave the pipeline's own `route` column NULL: it is work only the pipeline does.
KEY = "route VARCHAR,\n        PRIMARY KEY (tenant_id, api_call_history_id)\n"
KEYED_DDL = DDL[0].replace("route VARCHAR\n", KEY, 1)
assert "PRIMARY KEY" in KEYED_DDL, "sys_api_call_histories' DDL changed shape: fix the keyed baselines"
