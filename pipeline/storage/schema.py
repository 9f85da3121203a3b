"""DuckDB tables. `sys_api_call_histories` is typed exactly as DESIGN.md's contract gives it, so seed 003's
check queries run verbatim."""

from __future__ import annotations

DDL: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS sys_api_call_histories (
        api_call_history_id VARCHAR PRIMARY KEY,
        tenant_id VARCHAR,
        user_id VARCHAR,
        agent_id VARCHAR(100),
        method VARCHAR,
        path VARCHAR,
        query_string VARCHAR,
        status_code INTEGER,
        latency_ms BIGINT,
        request_size_bytes BIGINT,
        response_size_bytes BIGINT,
        ip_address VARCHAR,
        user_agent VARCHAR,
        trace_id VARCHAR,
        error_code VARCHAR,
        source VARCHAR,
        created_at TIMESTAMPTZ
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS dead_letters (
        dead_letter_id VARCHAR PRIMARY KEY,  -- derived from the source coordinates: replays add nothing
        dlq_topic VARCHAR,
        error VARCHAR,
        topic VARCHAR,
        "partition" INTEGER,
        "offset" BIGINT,
        "index" INTEGER,
        rejected_at TIMESTAMPTZ,
        value BLOB,
        size BIGINT,
        sha256 VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS materializer_offsets (
        consumer VARCHAR,
        cluster_id VARCHAR,
        topic VARCHAR,
        "partition" INTEGER,
        next_offset BIGINT,
        updated_at TIMESTAMPTZ,
        PRIMARY KEY (consumer, cluster_id, topic, "partition")
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS worker_heartbeats (
        worker_id VARCHAR PRIMARY KEY,
        host VARCHAR,
        pid BIGINT,
        started_at TIMESTAMPTZ,
        last_seen TIMESTAMPTZ,
        counters JSON
    )
    """,
)
