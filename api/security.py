"""Who may call what: every route declares exactly one policy, a FastAPI dependency made in this module.

| policy | who passes | refusals in |
|---|---|---|
| `public(reason)` | anyone (health, metrics, the docs, answers that explain a wrong call) | - |
| `bearer(*roles)` | a verified JWT holding one of the roles | the platform shape (`api/errors.py`) |
| `matrix(route)` | seed 004's access matrix (`api/cod.py`) | the seed's envelope and codes |
| `company_reader` | `X-Company-ID` + a verified key of it, or a Bearer token of its tenant | the platform shape |
| `company_credentials` | the four seed-000 headers, the key confirmed by the platform itself | the platform shape |

`policy_of(route)` reads a route's declaration back; `tests/unit/test_route_policies.py` walks the app and fails
on a route without exactly one. A Bearer header is parsed only here (`bearer_token`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection

from api import cod
from api.errors import ApiError
from pipeline.security import Principal, Role, TokenError, verify_token

POLICY = "__streamdesk_policy__"
F = TypeVar("F", bound=Callable[..., Any])


def declare(policy: str) -> Callable[[F], F]:
    """Mark a dependency as the route policy it enforces (what `policy_of` reports)."""

    def mark(fn: F) -> F:
        setattr(fn, POLICY, policy)
        return fn

    return mark


# --- the one Bearer parser ------------------------------------------------------------------------------


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`; None without the header; TokenError when it is malformed."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("Authorization must be `Bearer <token>`")
    return token.strip()


def bearer_principal(conn: HTTPConnection) -> Principal | None:
    """The verified caller of a request or websocket, or None without a token; TokenError for a bad one."""
    token = bearer_token(conn.headers.get("authorization"))
    if token is None:
        return None
    principal = verify_token(conn.app.state.settings.jwt_key(), token)
    conn.state.principal = principal
    return principal


# --- policies -------------------------------------------------------------------------------------------


def public(reason: str) -> Any:
    """No credentials needed; `reason` says why, and is what the route walk reports."""

    @declare(f"public: {reason}")
    def allow_anyone() -> None:
        return None

    return Depends(allow_anyone)


def _verified(conn: HTTPConnection) -> Principal:
    try:
        principal = bearer_principal(conn)
    except TokenError as exc:
        raise ApiError(401, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    if principal is None:
        raise ApiError(401, "missing bearer token (Authorization: Bearer <jwt>; `streamdesk token` mints one)",
                       headers={"WWW-Authenticate": "Bearer"})
    return principal


def bearer(*roles: Role) -> Any:
    """`Annotated[Principal, ...]` for a platform route open to these roles."""
    names = ", ".join(r.value for r in roles)

    @declare(f"bearer: {names}")
    def check(conn: HTTPConnection) -> Principal:
        principal = _verified(conn)
        if not principal.has(*roles):
            raise ApiError(403, f"this route needs one of the roles: {names}")
        return principal

    return Annotated[Principal, Depends(check)]


def matrix(route: str) -> Any:
    """`Annotated[Principal, ...]` for a seed-004 route: its row of the access matrix, the seed's codes."""
    roles, code = cod.MATRIX[route]
    names = sorted(r.value for r in roles)

    @declare(f"matrix: {route}")
    def check(conn: HTTPConnection) -> Principal:
        try:
            principal = bearer_principal(conn)
        except TokenError as exc:
            raise cod.CodError("COD_002", f"사용자 인증 실패: {exc}") from None
        if principal is None:
            raise cod.CodError("COD_002", "인증 토큰이 없습니다 (Authorization: Bearer <token>)")
        if not principal.roles & roles:
            raise cod.CodError(code, f"권한 부족: 이 API는 {', '.join(names)} 역할만 사용할 수 있습니다",
                               {"requiredRoles": names})
        return principal

    return Annotated[Principal, Depends(check)]


# --- reading the declarations back ----------------------------------------------------------------------

# Routes FastAPI itself adds (OpenAPI document, docs pages and their assets): public by construction.
FRAMEWORK_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static-offline-docs"})


def policy_of(route: Any) -> list[str]:
    """The policies a route's dependency tree declares (exactly one is right)."""
    found: list[str] = []
    stack = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while stack:
        dep = stack.pop()
        if (p := getattr(dep.call, POLICY, None)) is not None:
            found.append(p)
        stack.extend(dep.dependencies)
    return found


def is_api_route(route: Any) -> bool:
    return isinstance(route, APIRoute | APIWebSocketRoute) or hasattr(route, "dependant")
