"""Seed 004's envelope, error codes and access matrix, for every route under its two prefixes.

Every response is `{"success", "data" | "error", "meta": {"requestId", "timestamp", "version"}}`; the
`requestId` is the trace id the call-history record of the same request carries. HTTP statuses per code
are the table in docs/decisions.md ("Seed 004 codes").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from api.wire import iso_z
from pipeline.security import Principal, Role

PREFIXES = ("/v1/sol-cod", "/v1/sleep-quality-cod")
VERSION = "1.0"

STATUS: dict[str, int] = {
    "COD_001": 400, "COD_002": 401, "COD_003": 403, "COD_004": 404, "COD_005": 500,
    "COD_P001": 422, "COD_P002": 504, "COD_P003": 500, "COD_P004": 502, "COD_P005": 409,
    "COD_S001": 404, "COD_S002": 403, "COD_S003": 409, "COD_S004": 409,
    "COD_D001": 500, "COD_D002": 500, "COD_D003": 403, "COD_D004": 422,
}


class CodError(Exception):
    """A seed-004 error: its code decides the HTTP status."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.status = STATUS[code]


def is_cod_path(path: str) -> bool:
    return path.startswith(PREFIXES)


def meta(request: Request) -> dict[str, str]:
    return {"requestId": getattr(request.state, "trace_id", None) or "", "version": VERSION,
            "timestamp": iso_z(datetime.now(UTC))}


def ok(request: Request, data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"success": True, "data": data, "meta": meta(request)}, status_code=status)


def error_response(request: Request, code: str, message: str, details: Any = None, status: int | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The seed's error envelope; `status` keeps HTTP's own answer (405, 413, 503) where the seed's code is generic."""
    request.state.error_code = code
    headers = {**({"WWW-Authenticate": "Bearer"} if code == "COD_002" else {}), **(headers or {})}
    body = {"success": False, "error": {"code": code, "message": message, "details": details}, "meta": meta(request)}
    return JSONResponse(body, status_code=status or STATUS[code], headers=headers or None)


# --- the access matrix (enforced by api/security.matrix) ----------------------------------------

A, I, M, S, R = (Role.SYSTEM_ADMIN, Role.IAM_ADMIN, Role.MEDICAL_PROFESSIONAL, Role.SERVICE_ACCOUNT,  # noqa: E741 - the matrix reads as the seed prints it
                 Role.REGULAR_USER)
ALL = frozenset(Role)
STAFF = frozenset({A, I, M, S})

# Seed 004's matrix: route -> (roles allowed, the code a refused role gets).
MATRIX: dict[str, tuple[frozenset[Role], str]] = {
    "predict": (ALL, "COD_003"),
    "prediction": (ALL, "COD_003"),
    "history": (ALL, "COD_003"),
    "schedule_current": (ALL, "COD_003"),
    "schedule_update": (frozenset({A, I, S}), "COD_S002"),
    "schedule_delete": (frozenset({A, I, S}), "COD_S002"),
    "debate": (STAFF, "COD_003"),
    "analysis": (STAFF, "COD_003"),
    "recommendations": (ALL, "COD_003"),
    "performance_overview": (frozenset({A, I, S}), "COD_003"),
    "performance_agents": (frozenset({A, I, S}), "COD_003"),
    "admin_user_predictions": (STAFF, "COD_003"),
    "admin_archive": (frozenset({A, I}), "COD_003"),
    "admin_delete": (frozenset({A, I}), "COD_003"),
    "data_export": (frozenset({R}), "COD_D003"),
    # Added beside the seed's routes (docs/decisions.md / what a user needs):
    "admin_restore": (frozenset({A, I}), "COD_003"),
    "sleep_records": (ALL, "COD_003"),
}


def only_self(principal: Principal) -> bool:
    """A regular user (with no staff role) predicts and reads only for itself."""
    return not principal.roles & STAFF


def subject_user(principal: Principal, requested: str | None) -> str:
    """Whose data a read is about: regular users are always themselves; staff name a user (default: self)."""
    if only_self(principal):
        return principal.user_id
    return requested or principal.user_id


def tenant_filter(principal: Principal) -> str | None:
    """None for system_admin (every tenant), else the caller's own tenant."""
    return None if principal.has(A) else principal.tenant_id


def visible(principal: Principal, tenant: str, user_id: str) -> bool:
    """Row-level check for reads by id: another tenant's or (for a regular user) another user's row is COD_004."""
    if not principal.has(A) and tenant != principal.tenant_id:
        return False
    return not (only_self(principal) and user_id != principal.user_id)
