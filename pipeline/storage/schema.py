"""Every DuckDB table, sequence and index, in one form: the current shape as SQL (migrations.py brings older
files up to it). `sys_api_call_histories` is typed exactly as docs/architecture.md "DuckDB tables" gives it, so
seed 003's check queries run verbatim, with one column after the seed's: `route`.
"""

from __future__ import annotations

# Keys the platform confirmed, hashed (api/security/company_identity.py); several per domain, so keys can be rotated.
COMPANY_KEYS = """
    CREATE TABLE IF NOT EXISTS company_keys (
        tenant VARCHAR, platform VARCHAR, domain VARCHAR, key_hash VARCHAR, created_at TIMESTAMPTZ,
        verified_at TIMESTAMPTZ,  -- NULL: never confirmed by the platform; such a key opens nothing
        PRIMARY KEY (tenant, platform, domain, key_hash)
    )
    """

DDL: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS sys_api_call_histories (
        api_call_history_id VARCHAR,
        tenant_id VARCHAR DEFAULT '',  -- '' when the event names no tenant: a key column cannot be NULL
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
        created_at TIMESTAMPTZ,
        -- Not a seed column: the path with its identifier segments as {id} (pipeline/calls/routes.py), written
        -- with the row, so per-route figures group a few hundred routes, not millions of paths.
        route VARCHAR
        -- No key: an append-only log (docs/decisions.md "Calls are stored without a key"). Replays are dropped
        -- by calls_source_ranges, ids a producer supplies by calls_recent_ids, per tenant, within a window.
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS calls_source_ranges (  -- which calls.raw rows sys_api_call_histories holds
        cluster_id VARCHAR,
        "partition" INTEGER,
        ranges STRUCT(lo BIGINT, hi BIGINT)[]  -- source_seq ranges (offset << 20 | rank), sorted, disjoint
        -- One row per (cluster_id, partition), kept by the calls sink, which updates the rows it knows (no
        -- key: an upsert of a list cost 5.2 ms a transaction, an update 2.5)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS calls_recent_ids (  -- producer-supplied ids stored within the dedupe window
        tenant_id VARCHAR,
        api_call_history_id VARCHAR,
        seen_at TIMESTAMPTZ,
        PRIMARY KEY (tenant_id, api_call_history_id)
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
    # --- predictions (seed 004) ---
    """
    CREATE TABLE IF NOT EXISTS sleep_records (
        record_key VARCHAR PRIMARY KEY,  -- (tenant, user, kind, date[, instrument]): a corrected entry replaces
        tenant VARCHAR, user_id VARCHAR, kind VARCHAR, date DATE, data JSON, received_at TIMESTAMPTZ
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS predictions (
        prediction_id VARCHAR PRIMARY KEY, tenant VARCHAR, user_id VARCHAR, trigger_type VARCHAR,
        priority VARCHAR, status VARCHAR, requested_by VARCHAR, schedule_id VARCHAR, session_id VARCHAR,
        created_at TIMESTAMPTZ, target_date DATE, completed_at TIMESTAMPTZ, processing_time_ms BIGINT,
        sol_score DOUBLE, confidence_score DOUBLE, consensus_reached BOOLEAN, total_rounds INTEGER,
        final_consensus_score DOUBLE, debate_time_ms BIGINT, key_findings JSON, concern_areas JSON,
        data_completeness JSON, outcome JSON, quality JSON, error_code VARCHAR, error_message VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS debate_rounds (
        session_id VARCHAR, round_number INTEGER, prediction_id VARCHAR, tenant VARCHAR, user_id VARCHAR,
        start_time TIMESTAMPTZ, end_time TIMESTAMPTZ, consensus_score DOUBLE, expert_opinions JSON,
        PRIMARY KEY (session_id, round_number)  -- a replayed round adds nothing
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS expert_analyses (
        analysis_id VARCHAR PRIMARY KEY, prediction_id VARCHAR, session_id VARCHAR, tenant VARCHAR,
        user_id VARCHAR, agent_type VARCHAR, round_number INTEGER, sol_score DOUBLE, confidence DOUBLE,
        processing_time_ms BIGINT, opinion JSON, llm_info JSON, created_at TIMESTAMPTZ
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS recommendations (
        prediction_id VARCHAR PRIMARY KEY, tenant VARCHAR, user_id VARCHAR, body JSON, created_at TIMESTAMPTZ
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS prediction_schedules (
        schedule_id VARCHAR, tenant VARCHAR, user_id VARCHAR, bedtime_goal TIMESTAMPTZ,
        scheduled_trigger_time TIMESTAMPTZ, status VARCHAR, retry_count INTEGER, next_execution TIMESTAMPTZ,
        timezone VARCHAR, reason VARCHAR, last_prediction_id VARCHAR, last_error VARCHAR,
        created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ,
        PRIMARY KEY (tenant, schedule_id)  -- ids name a user: another tenant's same user id is another row
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS data_exports (
        export_id VARCHAR, tenant VARCHAR, user_id VARCHAR, status VARCHAR, format VARCHAR,
        include_raw BOOLEAN, created_at TIMESTAMPTZ, completed_at TIMESTAMPTZ, expires_at TIMESTAMPTZ,
        content BLOB, error VARCHAR,
        PRIMARY KEY (tenant, export_id)  -- ids name a user: another tenant's same user id is another row
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS archived_rows (  -- a user's rows moved out of the hot tables, restorable
        tenant VARCHAR, user_id VARCHAR, table_name VARCHAR, row_json JSON, archived_at TIMESTAMPTZ
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS user_archives (
        tenant VARCHAR, user_id VARCHAR, status VARCHAR, reason VARCHAR, retention_policy VARCHAR,
        archive_date DATE, rows_archived BIGINT, archived_at TIMESTAMPTZ, restored_at TIMESTAMPTZ,
        PRIMARY KEY (tenant, user_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS erasures (  -- erased users: the materializer and rebuild skip them forever
        tenant VARCHAR, user_id VARCHAR, reason VARCHAR, erased_by VARCHAR, erased_at TIMESTAMPTZ,
        rows_deleted BIGINT, PRIMARY KEY (tenant, user_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS erasure_codes (  -- seed 004 §5.3's confirmationCode, one-time, 10 minutes
        code_hash VARCHAR PRIMARY KEY, tenant VARCHAR, user_id VARCHAR, requested_by VARCHAR, expires_at TIMESTAMPTZ
    )
    """,
    # Archive twins: the same columns as the hot tables (pipeline/storage/queries/user_data.py).
    *(f"CREATE TABLE IF NOT EXISTS archive_{t} AS SELECT * FROM {t} WHERE false"
      for t in ("sleep_records", "predictions", "debate_rounds", "expert_analyses", "recommendations")),
    # --- tickets (seed 000): ingest jobs ---
    """
    CREATE TABLE IF NOT EXISTS ingest_jobs (
        job_id VARCHAR PRIMARY KEY, tenant VARCHAR, platform VARCHAR, domain VARCHAR, status VARCHAR,
        priority VARCHAR, options JSON, api_key_token VARCHAR,  -- Fernet-encrypted, never the key in clear
        created_at TIMESTAMPTZ, started_at TIMESTAMPTZ, last_activity TIMESTAMPTZ, completed_at TIMESTAMPTZ,
        current_step VARCHAR, step_details VARCHAR, completed_items BIGINT, total_items BIGINT,
        items_per_second DOUBLE, statistics JSON, cursor JSON, phase VARCHAR, error VARCHAR, worker VARCHAR,
        seq BIGINT, ignored_query JSON
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ingest_schedules (
        schedule_id VARCHAR PRIMARY KEY, tenant VARCHAR, platform VARCHAR, domain VARCHAR, cron VARCHAR,
        timezone VARCHAR, options JSON, api_key_token VARCHAR,  -- Fernet-encrypted, as in ingest_jobs
        status VARCHAR, created_at TIMESTAMPTZ, next_run_at TIMESTAMPTZ, last_run_at TIMESTAMPTZ,
        last_job_id VARCHAR, last_skipped_at TIMESTAMPTZ, last_skip_reason VARCHAR, runs BIGINT, skipped BIGINT,
        cancelled_at TIMESTAMPTZ
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ingest_job_logs (
        job_id VARCHAR, seq BIGINT, n INTEGER, timestamp TIMESTAMPTZ, level VARCHAR, message VARCHAR, details JSON,
        PRIMARY KEY (job_id, seq, n)
    )
    """,
    COMPANY_KEYS,
    """
    CREATE TABLE IF NOT EXISTS parquet_manifest (  -- what each exported partition held (parquet_export.py)
        table_name VARCHAR, tenant VARCHAR, day DATE, rows BIGINT, hash UBIGINT, exported_at TIMESTAMPTZ,
        PRIMARY KEY (table_name, tenant, day)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS company_domains (  -- the domains a company's jobs may collect from
        tenant VARCHAR, platform VARCHAR, domain VARCHAR, bound_at TIMESTAMPTZ, bound_by VARCHAR,
        PRIMARY KEY (tenant, platform, domain)
    )
    """,
    # --- tickets (seed 000): the collected objects. Each table's columns are its row model's fields in order;
    # tests/unit/test_schema.py holds the two together.
    """
    CREATE TABLE IF NOT EXISTS tickets (  -- the fields of schemas/tickets.py Ticket, in order
        tenant VARCHAR, platform VARCHAR, domain VARCHAR, source_id VARCHAR, updated_at TIMESTAMPTZ,
        job_id VARCHAR, subject VARCHAR, description_text VARCHAR, description_stripped VARCHAR, status VARCHAR,
        priority VARCHAR, source VARCHAR, type VARCHAR, tags VARCHAR[], requester_id VARCHAR,
        responder_id VARCHAR, group_id VARCHAR, company_id VARCHAR, spam BOOLEAN, is_escalated BOOLEAN,
        custom_fields JSON, created_at TIMESTAMPTZ, due_by TIMESTAMPTZ, fr_due_by TIMESTAMPTZ,
        key VARCHAR PRIMARY KEY, version_key VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS conversations (  -- the fields of schemas/tickets.py Conversation, in order
        tenant VARCHAR, platform VARCHAR, domain VARCHAR, source_id VARCHAR, updated_at TIMESTAMPTZ,
        job_id VARCHAR, ticket_id VARCHAR, body_text VARCHAR, body_stripped VARCHAR, incoming BOOLEAN,
        private BOOLEAN, author_role VARCHAR, user_id VARCHAR, source VARCHAR, created_at TIMESTAMPTZ,
        key VARCHAR PRIMARY KEY, version_key VARCHAR, ticket_key VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS kb_articles (  -- the fields of schemas/tickets.py KbArticle, in order
        tenant VARCHAR, platform VARCHAR, domain VARCHAR, source_id VARCHAR, updated_at TIMESTAMPTZ,
        job_id VARCHAR, title VARCHAR, description_text VARCHAR, status VARCHAR, folder_id VARCHAR,
        folder_name VARCHAR, category_id VARCHAR, category_name VARCHAR, tags VARCHAR[], created_at TIMESTAMPTZ,
        key VARCHAR PRIMARY KEY, version_key VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS kb_categories (  -- the fields of schemas/tickets.py KbCategory, in order
        tenant VARCHAR, platform VARCHAR, domain VARCHAR, source_id VARCHAR, updated_at TIMESTAMPTZ,
        job_id VARCHAR, name VARCHAR, description VARCHAR, created_at TIMESTAMPTZ, key VARCHAR PRIMARY KEY,
        version_key VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS kb_folders (  -- the fields of schemas/tickets.py KbFolder, in order
        tenant VARCHAR, platform VARCHAR, domain VARCHAR, source_id VARCHAR, updated_at TIMESTAMPTZ,
        job_id VARCHAR, name VARCHAR, description VARCHAR, category_id VARCHAR, visibility VARCHAR,
        created_at TIMESTAMPTZ, key VARCHAR PRIMARY KEY, version_key VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS attachments (  -- the fields of schemas/tickets.py Attachment, in order
        tenant VARCHAR, platform VARCHAR, domain VARCHAR, source_id VARCHAR, updated_at TIMESTAMPTZ,
        job_id VARCHAR, name VARCHAR, content_type VARCHAR, size BIGINT, attachment_url VARCHAR,
        parent_kind VARCHAR, parent_id VARCHAR, ticket_id VARCHAR, created_at TIMESTAMPTZ,
        content_sha256 VARCHAR, content_size BIGINT, content_text VARCHAR, content_truncated BOOLEAN,
        content_skipped VARCHAR, key VARCHAR PRIMARY KEY, version_key VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS integrated_objects (  -- the fields of schemas/tickets.py IntegratedObject, in order
        tenant VARCHAR, platform VARCHAR, domain VARCHAR, source_id VARCHAR, updated_at TIMESTAMPTZ,
        job_id VARCHAR, object_type VARCHAR, title VARCHAR, text VARCHAR, summary VARCHAR, status VARCHAR,
        tags VARCHAR[], conversation_count BIGINT, attachment_names VARCHAR[], created_at TIMESTAMPTZ,
        key VARCHAR PRIMARY KEY, version_key VARCHAR
    )
    """,
    # A job's end mark reached DuckDB (stage `stored`, then `embedded`): what it collected is there.
    """
    CREATE TABLE IF NOT EXISTS ingest_marks (
        job_id VARCHAR, tenant VARCHAR, stage VARCHAR, marked_at TIMESTAMPTZ, PRIMARY KEY (job_id, stage)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ingest_duplicates (
        tenant VARCHAR, table_name VARCHAR, duplicates BIGINT, PRIMARY KEY (tenant, table_name)
    )
    """,
    # One vector per object, from the worker's embedding agent. `seq` grows with every write (one writer
    # thread, so in commit order): the api indexes what is past the last seq it saw.
    "CREATE SEQUENCE IF NOT EXISTS ticket_vectors_seq",
    """
    CREATE TABLE IF NOT EXISTS ticket_vectors (
        tenant VARCHAR, key VARCHAR, kind VARCHAR, model VARCHAR, text_hash VARCHAR, vector FLOAT[],
        updated_at TIMESTAMPTZ, embedded_at TIMESTAMPTZ, seq BIGINT, PRIMARY KEY (tenant, key)
    )
    """,
)
