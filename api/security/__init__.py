"""Who may call what: every route declares exactly one policy, a FastAPI dependency made in this package.

| policy | who passes | refusals in |
|---|---|---|
| `public(reason)` | anyone (health, metrics, answers that explain a wrong call) | - |
| `bearer(*roles)` | a verified JWT holding one of the roles | the platform shape (`api/errors.py`) |
| `matrix(route)` | seed 004's access matrix (`api/cod_envelope.py`) | the seed's envelope and codes |
| `CompanyReader` | `X-Company-ID` + a confirmed key of it, or a Bearer token of its tenant | the platform shape |
| `ProvenCompany` | the four seed-000 headers, the key confirmed by the platform itself | the platform shape |
| `CompanyStream` | as `CompanyReader`, for the job's websocket (close code 4401 when refused) | a websocket close |

The Bearer header is read only in `bearer.py`; company keys live in `company_keys.py` and their proof with the
platform in `company_identity.py`. `policy_of(route)` reads a route's declaration back, and
`tests/unit/test_route_policies.py` walks the app and fails on a route without exactly one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.websockets import WebSocket

from api import cod_envelope
from api.errors import ApiError
from api.routing import dependant_of
from api.security.bearer import bearer_principal, required_principal
from api.security.company_identity import ProvenCredentials
from api.security.company_keys import company_of, credentials, refuse_body_credentials
from pipeline.security import Principal, Role, TokenError

POLICY = "__streamdesk_policy__"
F = TypeVar("F", bound=Callable[..., Any])

# Declared for OpenAPI only (`auto_error=False`): clients and fuzzers see which credentials a route takes; the
# policies below do the checking.
BEARER_SCHEME = HTTPBearer(auto_error=False, description="a JWT: `streamdesk token` mints one")
COMPANY_SCHEME = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="a Freshdesk API key the platform confirmed, with X-Company-ID")
_Bearer = Annotated[Any, Depends(BEARER_SCHEME)]
_CompanyKey = Annotated[Any, Depends(COMPANY_SCHEME)]


def declare(policy: str) -> Callable[[F], F]:
    """Mark a dependency as the route policy it enforces (what `policy_of` reports)."""

    def mark(fn: F) -> F:
        setattr(fn, POLICY, policy)
        return fn

    return mark


def public(reason: str) -> Any:
    """No credentials needed; `reason` says why, and is what the route walk reports."""

    @declare(f"public: {reason}")
    def allow_anyone() -> None:
        return None

    return Depends(allow_anyone)


def bearer(*roles: Role) -> Any:
    """`Annotated[Principal, ...]` for a platform route open to these roles."""
    names = ", ".join(r.value for r in roles)

    @declare(f"bearer: {names}")
    def check(request: Request, _: _Bearer) -> Principal:
        principal = required_principal(request)
        if not principal.has(*roles):
            raise ApiError(403, f"this route needs one of the roles: {names}")
        return principal

    return Annotated[Principal, Depends(check)]


def matrix(route: str) -> Any:
    """`Annotated[Principal, ...]` for a seed-004 route: its row of the access matrix, the seed's codes."""
    roles, code = cod_envelope.MATRIX[route]
    names = sorted(r.value for r in roles)

    @declare(f"matrix: {route}")
    def check(request: Request, _: _Bearer) -> Principal:
        try:
            principal = bearer_principal(request)
        except TokenError as exc:
            raise cod_envelope.CodError("COD_002", f"사용자 인증 실패: {exc}") from None
        if principal is None:
            raise cod_envelope.CodError("COD_002", "인증 토큰이 없습니다 (Authorization: Bearer <token>)")
        if not principal.roles & roles:
            raise cod_envelope.CodError(code, f"권한 부족: 이 API는 {', '.join(names)} 역할만 사용할 수 있습니다",
                               {"requiredRoles": names})
        return principal

    return Annotated[Principal, Depends(check)]


@declare("company: X-Company-ID with a confirmed X-API-Key, or a Bearer token of the tenant")
def company_reader(request: Request, _b: _Bearer, _k: _CompanyKey) -> str:
    return company_of(request)


@declare("company: the four seed-000 headers, the key confirmed by the platform")
async def proven_company(request: Request, _k: _CompanyKey) -> ProvenCredentials:
    """Credentials in the body are refused first (the seed's pitfall), then the headers are proven."""
    try:
        body = await request.json()
    except ValueError:
        body = None  # not JSON: the route's own body validation answers
    if isinstance(body, dict):
        refuse_body_credentials(body)
    return await request.app.state.services.jobs.identity.prove(request, credentials(request))


@declare("company: as the job reads, for its websocket (refused: close 4401)")
def company_stream(websocket: WebSocket) -> str | None:
    try:
        return company_of(websocket)
    except ApiError:
        return None


CompanyReader = Annotated[str, Depends(company_reader)]
ProvenCompany = Annotated[ProvenCredentials, Depends(proven_company)]
CompanyStream = Annotated[str | None, Depends(company_stream)]


# --- reading the declarations back ----------------------------------------------------------------------

# Routes FastAPI itself adds (the OpenAPI document, the docs pages and their assets): public by construction.
FRAMEWORK_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static-offline-docs"})


def policy_of(route: Any) -> list[str]:
    """The policies a route's dependency tree declares (exactly one is right)."""
    found: list[str] = []
    stack = list(getattr(dependant_of(route), "dependencies", []))
    while stack:
        dep = stack.pop()
        if (p := getattr(dep.call, POLICY, None)) is not None:
            found.append(p)
        stack.extend(dep.dependencies)
    return found


__all__ = ["CompanyReader", "CompanyStream", "ProvenCompany", "bearer", "bearer_principal", "matrix", "policy_of",
           "public"]
