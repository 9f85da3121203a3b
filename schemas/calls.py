"""The calls stream's wire contract (`calls.raw`, `calls.normalized`) and its API models (seed 003)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

NonNegative = Annotated[StrictInt, Field(ge=0)]

# Column order of sys_api_call_histories (seed 003), also the field order on calls.normalized.
COLUMNS: tuple[str, ...] = (
    "api_call_history_id", "tenant_id", "user_id", "agent_id", "method", "path", "query_string",
    "status_code", "latency_ms", "request_size_bytes", "response_size_bytes", "ip_address",
    "user_agent", "trace_id", "error_code", "source", "created_at",
)


class CallEvent(BaseModel):
    """One API call as a gateway reports it on `calls.raw`.

    The seed's columns as fields; anything a gateway only has as headers may come in `request_headers`
    / `response_headers` instead (X-Tenant-ID, X-User-ID, X-Agent-ID, X-DWP-Source, Content-Length, ...).
    """

    model_config = ConfigDict(extra="allow")

    api_call_history_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    tenant_id: str | StrictInt | None = None
    user_id: str | StrictInt | None = None
    agent_id: Annotated[str, Field(max_length=100)] | None = None
    method: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z]+$")]
    path: Annotated[str, Field(min_length=1, max_length=8192)]
    query_string: str | None = None
    status_code: Annotated[StrictInt, Field(ge=100, le=599)]
    latency_ms: Annotated[int | float, Field(ge=0)] | None = None
    request_size_bytes: NonNegative | None = None
    response_size_bytes: NonNegative | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    trace_id: str | None = None
    error_code: str | None = None
    source: str | None = None
    created_at: datetime | int | float | None = None
    request_headers: dict[str, str | int] | None = None
    response_headers: dict[str, str | int] | None = None

    @field_validator("latency_ms", mode="before")
    @classmethod
    def _not_bool(cls, v: object) -> object:
        if isinstance(v, bool):
            raise ValueError("must be a number, not a boolean")
        return v


class CallHistoryPublic(BaseModel):
    """One row of sys_api_call_histories as the API returns it."""

    api_call_history_id: str
    tenant_id: str | None
    user_id: str | None
    agent_id: str | None
    method: str
    path: str
    query_string: str | None
    status_code: int
    latency_ms: int | None
    request_size_bytes: int | None
    response_size_bytes: int | None
    ip_address: str | None
    user_agent: str | None
    trace_id: str | None
    error_code: str | None
    source: str | None
    created_at: datetime


class CallHistoriesPublic(BaseModel):
    items: list[CallHistoryPublic]
    next_cursor: str | None = Field(description="pass as `cursor` to get the next page; null on the last page")


class Accepted(BaseModel):
    accepted: int
    topic: str
    ids: list[str]
