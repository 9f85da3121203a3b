"""The error answers every route can give, as OpenAPI response models: the documented schema is what is sent.

Platform routes answer `{"error": {...}, "trace_id": ...}`; seed 004's routes the seed's envelope. Each route
group is included with the statuses it can answer (api/main.py), so a client generated from `/openapi.json`
knows every status and body it can receive.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.cod_api import CodMeta


class ErrorDetail(BaseModel):
    code: str = Field(examples=["VALIDATION_ERROR"])
    message: str
    details: Any = None


class PlatformError(BaseModel):
    """An error of the platform routes (calls, sql, health, ingest, search)."""

    error: ErrorDetail
    trace_id: str | None = Field(description="the trace id of this request's call-history row")


class CodErrorEnvelope(BaseModel):
    """An error of seed 004's routes: the seed's envelope with its code (COD_001 …)."""

    success: Literal[False]
    error: ErrorDetail
    meta: CodMeta


_WHY = {
    400: "invalid request (bad parameter, body or SQL)",
    401: "missing, expired or invalid credentials",
    403: "the credentials do not allow this",
    404: "no such resource for this caller",
    405: "method not allowed on this path",
    409: "conflicts with the resource's current state",
    413: "request body larger than the largest message",
    415: "a body type this route does not read, or a Content-Encoding other than gzip or deflate",
    422: "the request is well-formed but invalid",
    429: "rate limited; retry after Retry-After",
    500: "internal error (seed 004: COD_005, COD_P003, COD_D001, COD_D002)",
    502: "an upstream service failed (the help-desk platform, the LLM)",
    503: "a dependency (broker, worker) is unavailable; retry after Retry-After",
    504: "the work did not finish in time",
}


def _responses(model: type[BaseModel], statuses: tuple[int, ...]) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": model, "description": _WHY[s]} for s in statuses}


PLATFORM_ERRORS = _responses(PlatformError, (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 502, 503, 504))
UNSUPPORTED_MEDIA = _responses(PlatformError, (415,))
COD_ERRORS = _responses(CodErrorEnvelope, (400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 502, 503, 504))
