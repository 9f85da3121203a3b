"""Tokens and roles: HS256 JWTs with `sub`, `tenant`, `roles` (docs/decisions.md). Used by the api and the CLI."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import jwt

ALGORITHM = "HS256"


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
    tenant = claims.get("tenant")
    raw_roles = claims.get("roles") or []
    if tenant is None or not isinstance(raw_roles, list):
        raise TokenError("invalid token: needs `tenant` and a `roles` list")
    roles = frozenset(Role(r) for r in raw_roles if r in Role._value2member_map_)
    return Principal(str(claims["sub"]), str(tenant), roles)
