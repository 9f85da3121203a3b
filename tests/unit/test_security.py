"""Development tokens and their verification: who is calling comes only from a token that verifies."""

from __future__ import annotations

import base64
from enum import StrEnum

import jwt
import orjson
import pytest

from pipeline.security import Role, TokenError, mint_token, verify_token

KEY = "k" * 48
OTHER_KEY = "o" * 48


def test_roles_are_the_five_design_roles_as_strings():
    assert issubclass(Role, StrEnum)
    assert {r.value for r in Role} == {"system_admin", "iam_admin", "medical_professional", "service_account",
                                       "regular_user"}
    assert Role("system_admin") is Role.SYSTEM_ADMIN and Role.SYSTEM_ADMIN == "system_admin"


def test_minted_token_verifies_to_the_same_principal():
    token = mint_token(KEY, "user123", "wedosoft", [Role.IAM_ADMIN, Role.SERVICE_ACCOUNT])
    who = verify_token(KEY, token)
    assert (who.user_id, who.tenant_id) == ("user123", "wedosoft")
    assert who.roles == {Role.IAM_ADMIN, Role.SERVICE_ACCOUNT}
    assert who.has(Role.SYSTEM_ADMIN, Role.IAM_ADMIN)
    assert not who.has(Role.SYSTEM_ADMIN)


def test_token_carries_the_design_claims():
    claims = jwt.decode(mint_token(KEY, 1, 1, [Role.SYSTEM_ADMIN]), KEY, algorithms=["HS256"])
    assert (claims["sub"], claims["tenant"], claims["roles"]) == ("1", "1", ["system_admin"])
    assert claims["exp"] > claims["iat"]


def test_expired_token_is_refused():
    token = mint_token(KEY, "u", "t", [Role.REGULAR_USER], ttl_s=-10)
    with pytest.raises(TokenError, match="expired"):
        verify_token(KEY, token)


def test_token_signed_with_another_key_is_refused():
    with pytest.raises(TokenError, match="signature"):
        verify_token(KEY, mint_token(OTHER_KEY, "u", "t", [Role.SYSTEM_ADMIN]))


def test_tampered_claims_are_refused():
    header, payload, signature = mint_token(KEY, "u", "t", [Role.REGULAR_USER]).split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["system_admin"]
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="signature"):
        verify_token(KEY, f"{header}.{forged}.{signature}")


def test_unsigned_token_is_refused():
    token = jwt.encode({"sub": "u", "tenant": "t", "roles": ["system_admin"], "exp": 2**40}, None, algorithm="none")
    with pytest.raises(TokenError):
        verify_token(KEY, token)


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c"])
def test_garbage_is_refused_as_invalid(token):
    with pytest.raises(TokenError, match="invalid token"):
        verify_token(KEY, token)


def test_token_without_tenant_is_refused():
    token = jwt.encode({"sub": "u", "roles": ["system_admin"], "exp": 2**40}, KEY, algorithm="HS256")
    with pytest.raises(TokenError, match="tenant"):
        verify_token(KEY, token)


def test_unknown_roles_are_dropped_not_granted():
    token = jwt.encode({"sub": "u", "tenant": "t", "roles": ["root", "SYSTEM_ADMIN", "regular_user"],
                        "exp": 2**40}, KEY, algorithm="HS256")
    assert verify_token(KEY, token).roles == {Role.REGULAR_USER}


@pytest.mark.parametrize("claims", [{"roles": [{}]}, {"roles": [["system_admin"]]}, {"roles": "system_admin"},
                                    {"tenant": {"id": "t"}}, {"tenant": ""}, {"tenant": True}, {"sub": ""}])
def test_a_signed_token_with_claims_of_the_wrong_type_is_a_token_error(claims):
    good = {"sub": "u", "tenant": "t", "roles": ["system_admin"], "exp": 2**40}
    with pytest.raises(TokenError, match="invalid token"):
        verify_token(KEY, jwt.encode(good | claims, KEY, algorithm="HS256"))
