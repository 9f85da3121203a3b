"""Tokens and roles: HS256 JWTs with `sub`, `tenant`, `roles` (docs/decisions.md). Used by the api and the CLI."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

ALGORITHM = "HS256"
MAX_CLAIM_CHARS = 256


class Role(StrEnum):
    SYSTEM_ADMIN = "system_admin"
    IAM_ADMIN = "iam_admin"
    MEDICAL_PROFESSIONAL = "medical_professional"
    SERVICE_ACCOUNT = "service_account"
    REGULAR_USER = "regular_user"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, from verified claims only."""

    user_id: str
    tenant_id: str
    roles: frozenset[Role]

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


class TokenError(ValueError):
    """Missing, expired, malformed or tampered token; the message says which."""


def mint_token(key: str, user: str, tenant: str, roles: list[Role], ttl_s: int = 86_400) -> str:
    now = int(time.time())
    claims = {"sub": str(user), "tenant": str(tenant), "roles": [r.value for r in roles], "iat": now,
              "exp": now + ttl_s}
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify_token(key: str, token: str) -> Principal:
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidSignatureError:
        raise TokenError("token signature does not verify") from None
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The claims as a Principal, or TokenError: a signed token can still carry claims of the wrong type."""
    sub, tenant, raw_roles = claims.get("sub"), claims.get("tenant"), claims.get("roles", [])
    if not _ident(sub) or not _ident(tenant):
        raise TokenError("invalid token: `sub` and `tenant` must be non-empty strings or integers")
    if not isinstance(raw_roles, list | None) or not all(isinstance(r, str) for r in raw_roles or ()):
        raise TokenError("invalid token: `roles` must be a list of strings")
    roles = frozenset(Role(r) for r in raw_roles or () if r in Role._value2member_map_)
    return Principal(str(sub), str(tenant), roles)


def _ident(value: Any) -> bool:
    """A usable id: a non-empty string or an integer (bool is not one), of a sane length."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and 0 < len(value) <= MAX_CLAIM_CHARS)
