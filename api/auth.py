"""Bearer-JWT authentication and role checks, shared by every router."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from api.deps import SettingsDep
from api.errors import ApiError
from pipeline.security import Principal, Role, TokenError, verify_token


def principal_from_request(request: Request, key: str) -> Principal | None:
    """The verified principal, or None when no bearer token was sent; raises TokenError if one is bad."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("Authorization must be `Bearer <token>`")
    return verify_token(key, token.strip())


def current_principal(request: Request, settings: SettingsDep) -> Principal:
    try:
        principal = principal_from_request(request, settings.jwt_key())
    except TokenError as exc:
        raise ApiError(401, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    if principal is None:
        raise ApiError(401, "missing bearer token (Authorization: Bearer <jwt>; `streamdesk token` mints one)",
                       headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    allowed = ", ".join(r.value for r in roles)

    def check(principal: PrincipalDep) -> Principal:
        if not principal.has(*roles):
            raise ApiError(403, f"this route needs one of the roles: {allowed}")
        return principal

    return check
