"""Seed 000's ingest options and the job messages between api and worker.

Topics (keyed by Freshdesk domain, so a domain's jobs, their control commands and its rate budget all live
on one partition, hence one worker):
* `ingest.commands`: a `JobCommand` — run a job (with its options, its encrypted API key and a cursor to
  resume from) or steer one (pause, resume, cancel, priority_change).
* `ingest.progress` (key job id): `JobProgress` events the api materializes into `ingest_jobs`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.strict import Flag

JobStatus = Literal["queued", "running", "paused", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
Count = Annotated[int, Field(ge=0)]


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class IngestOptions(BaseModel):
    """`POST /ingest` body (seed 000 §1). Credentials are headers only; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    incremental: Flag = True
    purge: Flag = False
    process_attachments: Flag = False
    force_rebuild: Flag = False
    include_kb: Flag = True
    max_tickets: Count | None = Field(default=None, description="null = no limit, 0 = none")
    max_articles: Count | None = Field(default=None, description="null = no limit, 0 = none")


class JobOptions(IngestOptions):
    """`POST /ingest/jobs` body (seed 000 §2): the seed's ranges and defaults."""

    batch_size: Annotated[int, Field(ge=1, le=200)] = 50
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    parallel_workers: Annotated[int, Field(ge=1, le=8)] = 4
    auto_start: Flag = True
    priority: Priority = Priority.NORMAL


class ScheduleSpec(BaseModel):
    """`schedule` in a `POST /ingest/jobs` body: run this collection again on a cron schedule (seed 000: "정기
    수집 작업 설정 (예: 매일 새벽 2시)" is `{"cron": "0 2 * * *", "timezone": "Asia/Seoul"}`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cron: Annotated[str, Field(min_length=9, max_length=100, description="five fields: minute hour day month weekday")]
    timezone: Annotated[str, Field(max_length=64, description="an IANA zone, e.g. Asia/Seoul")] = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError("not a five-field cron expression (minute hour day month weekday), e.g. '0 2 * * *'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Seoul or UTC") from None
        return value

    def next_after(self, moment: datetime) -> datetime:
        """The first time after `moment` the schedule fires, in UTC."""
        from zoneinfo import ZoneInfo

        from croniter import croniter

        local = moment.astimezone(ZoneInfo(self.timezone))
        return croniter(self.cron, local).get_next(datetime).astimezone(UTC)


Action = Literal["run", "start", "pause", "resume", "cancel", "priority_change"]


class JobStatistics(BaseModel):
    tickets_collected: Count = 0
    conversations_collected: Count = 0
    kb_articles_collected: Count = 0
    attachments_processed: Count = 0
    errors_encountered: Count = 0
    retries_performed: Count = 0
    api_calls: Count = 0
    rate_limited: Count = 0
    api_time_ms: float = 0.0  # summed time to response headers of every API call
    rate_limit_usage: float | None = None  # % of the plan's per-minute budget used, per the last X-RateLimit-*
    # With no max_tickets, Freshdesk says nothing of how many tickets there are: the job estimates it from how far
    # its updated_at-ordered listing has come (pipeline/ingest/estimate.py); null until it can.
    estimated_total_tickets: Count | None = None
    listing_from: datetime | None = None  # updated_at of the first ticket the job listed: the estimate's origin
    listing_to: datetime | None = None  # the account's newest updated_at when the job began: where the listing ends
    batches_published: Count = 0  # messages sent to tickets.raw (the seed's "ticket batch 5/12")
    total_is_estimate: bool = False  # total_items is the estimate (or holds one), not a limit the job was given


class JobCommand(BaseModel):
    """One message on `ingest.commands`. `api_key_token` is the key encrypted with the settings' SECRET_KEY."""

    model_config = ConfigDict(frozen=True)
    action: Action
    job_id: str
    tenant: str
    platform: Literal["freshdesk"] = "freshdesk"
    domain: str
    options: JobOptions | None = None
    api_key_token: str | None = None
    cursor: dict[str, Any] | None = Field(default=None, description="resume from here (TicketCursor.to_dict)")
    phase: str | None = Field(default=None, description="resume at this step")
    statistics: JobStatistics | None = Field(default=None, description="counts so far, when resuming")
    reason: str | None = None
    priority: Priority | None = None
    # pause / cancel (seed 000's control options): finish the thread in hand and publish the open batch first
    # (graceful), or stop at once and drop it; keep the position as the resume point (save_progress), or not.
    graceful: bool = True
    save_progress: bool = True
    at: datetime


class LogLine(BaseModel):
    model_config = ConfigDict(frozen=True)
    timestamp: datetime
    level: Literal["DEBUG", "INFO", "WARN", "ERROR"]
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class JobProgress(BaseModel):
    """One state of a running job; `seq` orders them (the latest wins), `logs` are the lines new since the last."""

    model_config = ConfigDict(frozen=True)
    job_id: str
    tenant: str
    domain: str
    seq: int
    status: JobStatus
    current_step: str
    step_details: str = ""
    completed_items: Count = 0
    total_items: Count | None = None
    items_per_second: float = 0.0
    statistics: JobStatistics = Field(default_factory=JobStatistics)
    cursor: dict[str, Any] | None = None
    phase: str | None = None
    started_at: datetime | None = None
    at: datetime
    error: str | None = None
    worker: str = ""
    logs: list[LogLine] = Field(default_factory=list)


# --- control (POST /ingest/jobs/{id}/control, and the console's buttons) ----------------------------------------


class ControlOptions(BaseModel):
    """`graceful_shutdown` and `save_progress` as the seed names them; unknown options are kept, not refused."""

    model_config = ConfigDict(extra="allow")
    graceful_shutdown: bool = True
    save_progress: bool = True
    priority: Priority | None = None


class ControlBody(BaseModel):
    action: Literal["pause", "resume", "cancel", "priority_change", "start"]
    reason: str | None = Field(default=None, max_length=500)
    options: ControlOptions = Field(default_factory=ControlOptions)


# The seed restarts a failed job with `resume` too: it continues from the failed run's cursor.
ALLOWED_FROM = {"pause": {"running", "queued"}, "resume": {"paused", "failed"},
                "cancel": {"queued", "running", "paused"}, "priority_change": {"queued", "running", "paused"},
                "start": {"queued"}}
RESULT = {"pause": "paused", "resume": "running", "cancel": "cancelled", "start": "running"}
