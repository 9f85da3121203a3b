"""HTTP errors for the platform routes (calls, sql, health): one JSON shape, never a bare 500.

`{"error": {"code": ..., "message": ..., "details": ...}, "trace_id": ...}`. Under seed 004's prefixes every
error, FastAPI's own included (validation, unknown route, wrong method), takes that seed's envelope instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import cod_envelope
from api.refusals import AlreadyRunning, BrokerUnavailable, NotEnoughData, Refused, Unavailable
from api.routing import methods_for

log = structlog.get_logger(__name__)

_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
          409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "VALIDATION_ERROR",
          429: "TOO_MANY_REQUESTS",
          503: "UNAVAILABLE"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.code = code or _CODES.get(status, "ERROR")
        self.message = message
        self.details = details
        self.headers = headers


def error_response(request: Request, status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    request.state.error_code = code
    body = {"error": {"code": code, "message": message, "details": details},
            "trace_id": getattr(request.state, "trace_id", None)}
    return JSONResponse(body, status_code=status, headers=headers)


_COD_FOR_STATUS = {400: "COD_001", 401: "COD_002", 403: "COD_003", 404: "COD_004", 405: "COD_001", 413: "COD_001",
                   415: "COD_001", 422: "COD_001"}


# HTTP's own answers that a seed-004 code cannot carry: the envelope gets the generic code, the status stays.
_KEEP_STATUS = frozenset({405, 413, 415, 429, 503})


def _cod(request: Request) -> bool:
    return cod_envelope.is_cod_path(request.url.path)


def _as_cod(request: Request, status: int, message: str, details: Any = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    code = _COD_FOR_STATUS.get(status, "COD_005")
    keep = status if status in _KEEP_STATUS else None
    return cod_envelope.error_response(request, code, message, details, keep, headers)


def _allowed(request: Request, headers: dict[str, str] | None) -> dict[str, str] | None:
    """Allow lists every method of the path (Starlette names only the first route that matched it)."""
    methods = methods_for(request.app, request.url.path)
    return {**(headers or {}), "Allow": ", ".join(sorted(methods))} if methods else headers


def shaped_error(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An HTTP-status error in the route's shape; under seed 004 HTTP's own statuses stay beside COD_001."""
    if status == 405:
        headers = _allowed(request, headers)
    if _cod(request):
        return _as_cod(request, status, message, headers=headers)
    return error_response(request, status, _CODES.get(status, "ERROR"), message, headers=headers)


MAX_ERRORS = 20  # a hostile body can fail validation a million times; the first few say what is wrong
MAX_TEXT = 200  # the input itself is never echoed, and a dict key in `loc` or a message is cut to this


def clip(value: Any) -> Any:
    """Strings cut to MAX_TEXT characters; other scalars as they are."""
    return value[:MAX_TEXT] + "…" if isinstance(value, str) and len(value) > MAX_TEXT else value


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Where and why, without the input: at most MAX_ERRORS entries (plus a count of the rest)."""
    out: list[dict[str, Any]] = [{"loc": [clip(p) for p in e.get("loc", ())][:16], "msg": clip(e.get("msg")),
                                  "type": clip(e.get("type"))} for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        out.append({"loc": [], "msg": f"{len(errors) - MAX_ERRORS} more errors not shown", "type": "truncated"})
    return out


# What a service's refusal (api/refusals.py) answers: HTTP status, platform code, seed-004 code. The most specific
# class listed first wins. Under seed 004 a 503 keeps its status beside the generic COD_005.
REFUSALS: tuple[tuple[type[Refused], int, str, str], ...] = (
    (BrokerUnavailable, 503, "BROKER_UNAVAILABLE", "COD_005"),
    (Unavailable, 503, "UNAVAILABLE", "COD_005"),
    (NotEnoughData, 422, "VALIDATION_ERROR", "COD_P001"),
    (AlreadyRunning, 409, "CONFLICT", "COD_P005"),
    (Refused, 400, "BAD_REQUEST", "COD_001"),
)


def refusal(exc: Refused) -> tuple[int, str, str]:
    """(HTTP status, platform code, seed-004 code) of a refusal."""
    return next((status, code, cod_code) for kind, status, code, cod_code in REFUSALS if isinstance(exc, kind))


def refused_response(request: Request, exc: Refused) -> JSONResponse:
    status, code, cod_code = refusal(exc)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, Unavailable) else None
    if _cod(request):
        keep = status if status != cod_envelope.STATUS[cod_code] else None
        return cod_envelope.error_response(request, cod_code, exc.message, exc.details, keep, headers)
    return error_response(request, status, code, exc.message, exc.details, headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Refused, refused_response)  # type: ignore[arg-type]

    @app.exception_handler(cod_envelope.CodError)
    async def _cod_error(request: Request, exc: cod_envelope.CodError) -> JSONResponse:
        return cod_envelope.error_response(request, exc.code, exc.message, exc.details)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if _cod(request):
            return _as_cod(request, exc.status, exc.message, exc.details, exc.headers)
        return error_response(request, exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(exc.errors())
        if _cod(request):
            return cod_envelope.error_response(request, "COD_001", "요청 데이터 유효성 검증 실패", details)
        return error_response(request, 422, "VALIDATION_ERROR", "request is invalid", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return shaped_error(request, exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        if _cod(request):
            return cod_envelope.error_response(request, "COD_005",
                                               "시스템 내부 오류; requestId로 로그를 찾을 수 있습니다")
        return error_response(request, 500, "INTERNAL", "internal error; the trace id identifies it in the logs")
