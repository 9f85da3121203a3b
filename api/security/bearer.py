"""The one place a Bearer header is read: `Authorization: Bearer <jwt>` to a verified Principal."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from api.errors import ApiError
from pipeline.security import Principal, TokenError, verify_token


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


def optional_principal(conn: HTTPConnection) -> Principal | None:
    """As bearer_principal, but a bad token is a 401 in the platform shape (a missing one is None)."""
    try:
        return bearer_principal(conn)
    except TokenError as exc:
        raise ApiError(401, f"bad bearer token: {exc}", code="UNAUTHORIZED",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None


def required_principal(conn: HTTPConnection) -> Principal:
    """A verified caller, or a 401 in the platform shape naming what to send."""
    principal = optional_principal(conn)
    if principal is None:
        raise ApiError(401, "missing bearer token (Authorization: Bearer <jwt>; `streamdesk token` mints one)",
                       headers={"WWW-Authenticate": "Bearer"})
    return principal
