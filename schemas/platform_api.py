"""What the platform routes answer (health, call-history stats, SQL, seed 000's ingest, search), as the OpenAPI
document states them. Keys are the wire's own (snake_case, as seed 000 writes them); times are ISO 8601 strings in
UTC. Each model forbids keys it does not declare, so a route that starts answering something undocumented fails
its tests instead of drifting from /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "paused", "completed", "failed", "cancelled"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- operations ----------------------------------------------------------------------------------------------


class TableParquetExport(_Out):
    written: int  # partitions (re)written
    removed: int  # partitions deleted (now empty)
    rows: int  # rows in the partitions written


class ParquetExportResult(_Out):
    directory: str
    tables: dict[str, TableParquetExport]


class TracePartialSuccess(_Out):
    rejectedSpans: int  # noqa: N815 - OTLP's own field names
    errorMessage: str  # noqa: N815


class TraceExportResult(_Out):
    """OTLP's ExportTraceServiceResponse: empty when every HTTP server span was taken."""

    partialSuccess: TracePartialSuccess | None = None  # noqa: N815


class BrokerHealth(_Out):
    ok: bool
    bootstrap: str | None = None
    error: str | None = None


class DuckDbHealth(_Out):
    ok: bool
    path: str | None = None
    error: str | None = None


class WorkerSeen(_Out):
    worker_id: str
    host: str | None
    pid: int | None
    seconds_since_heartbeat: float
    alive: bool


class WorkersHealth(_Out):
    ok: bool
    workers: list[WorkerSeen]


class MaterializerHealth(_Out):
    ok: bool
    rows_written: int
    error: str | None
    seconds_since_last_batch: float | None


class RecorderHealth(_Out):
    sent: int
    buffered: int


class Health(_Out):
    """200 when every part is up; 503 with the same report and `status: degraded` otherwise."""

    status: Literal["ok", "degraded"]
    broker: BrokerHealth
    duckdb: DuckDbHealth
    worker: WorkersHealth
    materializer: MaterializerHealth
    recorder: RecorderHealth


class SqlRows(_Out):
    columns: list[str]
    types: list[str] = Field(description="DuckDB's type of each column")
    rows: list[list[Any]]
    truncated: bool = Field(description="more rows matched than STREAMDESK_SQL_MAX_ROWS")


# --- call histories (seed 003) -------------------------------------------------------------------------------


class LatencyFigures(_Out):
    count: int
    error_rate: float | None = Field(description="share of 4xx and 5xx answers")
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class RouteFigures(_Out):
    method: str
    path: str | None = Field(description="the route: the path with its identifier segments as {id} "
                                         "(/api/v1/tickets/{id}); filter the calls with ?route=")
    count: int
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class TopAgent(_Out):
    agent_id: str
    count: int
    error_rate: float | None


class TopUser(_Out):
    user_id: str
    count: int
    error_rate: float | None


class SeriesPoint(_Out):
    bucket: str
    count: int
    errors: int


class TopTenant(_Out):
    tenant_id: str
    count: int
    error_rate: float | None


class SizeDistribution(_Out):
    count: int = Field(description="calls whose size is known (NULL sizes are not counted)")
    p50_bytes: float | None
    p95_bytes: float | None
    p99_bytes: float | None
    max_bytes: int | None


class SizeClassLatency(_Out):
    size_class: str = Field(description="request body size class: unknown (NULL), < 1 KiB, 1-10 KiB, ... >= 10 MiB")
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class LargeCall(_Out):
    api_call_history_id: str
    tenant_id: str | None
    agent_id: str | None
    method: str
    path: str
    request_size_bytes: int | None
    response_size_bytes: int | None
    latency_ms: int | None
    status_code: int
    created_at: datetime


class LargeCalls(_Out):
    threshold_bytes: int = Field(description="a body at or over this size is large "
                                             "(STREAMDESK_LARGE_BODY_BYTES, or ?large_body_bytes=)")
    count: int
    latest: list[LargeCall] = Field(description="the newest ones, at most `top`")


class SizeFigures(_Out):
    """Seed 003's size monitoring: body sizes, latency by request size, large requests and responses."""

    request: SizeDistribution
    response: SizeDistribution
    latency_by_request_size: list[SizeClassLatency]
    large_requests: LargeCalls
    large_responses: LargeCalls


class CallStats(_Out):
    total: LatencyFigures
    routes: list[RouteFigures]
    top_agents: list[TopAgent]
    top_users: list[TopUser]
    top_tenants: list[TopTenant] = Field(description="your own tenant only, unless you are a system_admin")
    bucket: Literal["minute", "hour", "day"]
    series: list[SeriesPoint]
    sizes: SizeFigures


# --- ingest (seed 000) ---------------------------------------------------------------------------------------


class Progress(_Out):
    current_step: str | None
    step_details: str
    completed_items: int
    total_items: int | None = Field(description="the limit the job was given, or (total_is_estimate) an estimate")
    total_is_estimate: bool = Field(False, description="no limit was set: total_items is estimated from how far "
                                                       "the updated_at-ordered listing has come")
    percentage: float | None
    items_per_second: float


class JobSummary(_Out):
    job_id: str
    company_id: str
    platform: str
    domain: str
    status: JobStatus
    priority: str
    progress: Progress
    created_at: str | None
    started_at: str | None
    estimated_completion: str | None


class ProgressTracking(_Out):
    status_url: str
    websocket_url: str


class ControlUrls(_Out):
    pause_url: str
    cancel_url: str


def _only_with_query() -> Any:
    return Field(default=None, description="only when the POST had query parameters (they are ignored)")


class IngestSchedule(_Out):
    """A recurring collection: the company's domain collected incrementally at each cron time."""

    schedule_id: str
    company_id: str
    platform: str
    domain: str
    cron: str
    timezone: str
    status: Literal["active", "cancelled"]
    next_run_at: str | None
    last_run_at: str | None
    last_job_id: str | None
    last_skipped_at: str | None
    last_skip_reason: str | None = Field(description="why the last occurrence did not start a job")
    runs: int
    skipped: int = Field(description="occurrences skipped because a job of the domain was still active")
    created_at: str | None
    options: dict[str, Any]


class ScheduleList(_Out):
    schedules: list[IngestSchedule]


class JobCreated(_Out):
    job_id: str
    status: JobStatus
    priority: str
    estimated_duration: str | None = Field(description="e.g. \"15-30 minutes\": from this domain's last full "
                                                       "run, or the limit at the account's pace; null when unknown")
    estimated_items: int | None = Field(description="the limits, or what this domain's last full run collected")
    created_at: str | None
    progress_url: str
    progress_tracking: ProgressTracking
    schedule: IngestSchedule | None = Field(None, description="only when the body asked for one")
    control: ControlUrls
    ignored_query_parameters: list[str] | None = _only_with_query()
    warning: str | None = _only_with_query()


class PageInfo(_Out):
    page: int
    limit: int
    total: int
    total_pages: int


class JobCounts(_Out):
    total_jobs: int
    queued: int
    running: int
    paused: int
    completed: int
    failed: int
    cancelled: int


class JobList(_Out):
    jobs: list[JobSummary]
    pagination: PageInfo
    summary: JobCounts


class JobTiming(_Out):
    created_at: str | None
    started_at: str | None
    last_activity: str | None
    completed_at: str | None
    estimated_completion: str | None
    elapsed_seconds: float


class LogLine(_Out):
    timestamp: str | None
    level: str
    message: str
    details: dict[str, Any]


class Stored(_Out):
    materialized: bool = Field(description="every record the job collected is in DuckDB")
    searchable: bool = Field(description="and embedded, so /search finds it")


class JobDetail(JobSummary):
    timing: JobTiming
    statistics: dict[str, Any]
    error: str | None
    options: dict[str, Any] | None
    ignored_query_parameters: list[str]
    logs: list[LogLine]
    storage: Stored


class ControlResult(_Out):
    job_id: str
    action_performed: Literal["pause", "resume", "cancel", "priority_change", "start"]
    previous_status: JobStatus
    current_status: JobStatus
    timestamp: str | None
    progress_saved: bool
    resume_capability: bool
    priority: str
    message: str


class Collected(_Out):
    tickets_collected: int
    conversations_collected: int
    kb_articles_collected: int
    attachments_processed: int


class IngestStorage(_Out):
    database_path: str
    tables_created: list[str]
    records: dict[str, int]
    total_records: int
    materialized: bool = Field(description="every record the job collected is in DuckDB")
    searchable: bool = Field(description="and embedded, so /search finds it")


class IngestTiming(_Out):
    started_at: str | None
    completed_at: str | None
    duration_seconds: float


class IngestResult(_Out):
    status: JobStatus
    execution_id: str
    results: Collected
    storage: IngestStorage
    execution_time: str = Field(description="the seed's \"32.5s\": the same as timing.duration_seconds")
    timing: IngestTiming
    next_steps: list[str]
    ignored_query_parameters: list[str] | None = _only_with_query()
    warning: str | None = _only_with_query()


class SystemMetrics(_Out):
    active_jobs: int
    queued_jobs: int
    total_jobs_today: int
    success_rate: float | None
    average_job_duration: str | None


class PerformanceMetrics(_Out):
    items_per_second: float
    api_response_time_avg: float | None
    database_write_time_avg: float | None
    memory_usage_mb: float
    cpu_usage_percent: float


class FreshdeskMetrics(_Out):
    rate_limit_usage: float | None
    api_errors_today: int
    successful_requests: int
    average_response_time: float | None


class PlatformMetrics(_Out):
    freshdesk: FreshdeskMetrics


class DataQuality(_Out):
    duplicate_rate: float | None
    validation_error_rate: float | None
    missing_fields_rate: float | None


class SearchMetrics(_Out):
    integrated_objects: int
    embedded: int
    pending_embedding: int
    indexed: int


class IngestMetrics(_Out):
    system_metrics: SystemMetrics
    performance_metrics: PerformanceMetrics
    platform_metrics: PlatformMetrics
    data_quality: DataQuality
    search_metrics: SearchMetrics


# --- search (seed 000 §7) ------------------------------------------------------------------------------------


class SyncResult(_Out):
    status: Literal["completed", "in_progress"]
    objects: int
    embedded: int
    pending: int
    reused: int
    model: str
    dimensions: int | None
    duration_seconds: float
    company_id: str
    force_rebuild: bool
    note: str | None
    next_steps: list[str]


class Hit(_Out):
    id: str
    kind: Literal["ticket", "kb_article"]
    title: str
    score: float
    keyword_score: float | None
    semantic_score: float | None
    snippet: str
    updated_at: str


class SearchResults(_Out):
    query: str
    mode: Literal["hybrid", "keyword", "semantic"]
    total: int
    hits: list[Hit]
    note: str | None = Field(default=None, description="only when nothing is indexed for the company yet")
