"""Query-string redaction as OpenTelemetry scrubs `url.query`: secret values become REDACTED, all else untouched."""

from __future__ import annotations

import pytest

from pipeline.calls.redact import TRIGGERS, is_sensitive_key, redact_query

SECRET_KEYS = ["api_key", "token", "access_token", "password", "signature", "sig", "X-Amz-Signature",
               "AWSAccessKeyId"]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_value_is_replaced_and_key_kept(key):
    assert redact_query(f"page=1&{key}=s3cr3t&size=10") == f"page=1&{key}=REDACTED&size=10"


@pytest.mark.parametrize("key", ["API_KEY", "Token", "PassWord", "x-amz-signature", "awsaccesskeyid", "SIG"])
def test_keys_match_case_insensitively_and_keep_their_spelling(key):
    assert redact_query(f"{key}=s3cr3t") == f"{key}=REDACTED"


@pytest.mark.parametrize("key", ["api%5Fkey", "X%2DAmz%2DSignature", "%74oken"])
def test_percent_encoded_keys_are_recognised_and_kept_encoded(key):
    assert redact_query(f"a=1&{key}=s3cr3t") == f"a=1&{key}=REDACTED"


def test_presigned_s3_url_keeps_order_and_every_other_byte():
    query = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260120T000000Z&X-Amz-Expires=3600"
             "&X-Amz-Signature=deadbeef&q=caf%C3%A9+au+lait&empty=&flag")
    assert redact_query(query) == ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260120T000000Z"
                                   "&X-Amz-Expires=3600&X-Amz-Signature=REDACTED&q=caf%C3%A9+au+lait&empty=&flag")


def test_every_occurrence_is_redacted_and_values_containing_equals_signs_too():
    assert redact_query("token=a&token=b%3D%3D&password=x=y") == "token=REDACTED&token=REDACTED&password=REDACTED"


@pytest.mark.parametrize("query", ["token=", "token", "token&page=1", "page=1&&size=10", "page=1&size=10",
                                   "tokens=abc&max_tokens=9&sig_alg=HS256", "q=token%3Dabc", "token=&&page=1"])
def test_left_byte_for_byte(query):
    # Empty values and bare keys carry no secret; other keys (even ones containing a secret's name) are kept.
    assert redact_query(query) == query


# Gateway headers sent as params, compounds, PHP/Rails and dotted keys: an exact-match list stored most in clear.
SPELLINGS = ["X-API-Key", "x_api_key", "XApiKey", "X_Api_Key", "auth_token", "csrf_token", "user[password]",
                 "a[b][token]", "token[]", "password[0]", "user.password", "credentials.secret", "userPassword",
                 "PassWord", "new_password2", "user%5Bpassword%5D", "Ocp-Apim-Subscription-Key", "SessionID",
                 "session_id", "AWSACCESSKEYID", "private_key", "client_assertion", "credentials", "auth"]


@pytest.mark.parametrize("key", SPELLINGS)
def test_compound_bracketed_and_dotted_secret_keys_are_redacted(key):
    assert redact_query(f"page=1&{key}=s3cr3t&size=10") == f"page=1&{key}=REDACTED&size=10"


def test_semicolons_separate_parameters_like_ampersands():
    assert redact_query("a=1;token=x;b=2") == "a=1;token=REDACTED;b=2"
    assert redact_query("a=1&api_key=x;b=2&sig=y") == "a=1&api_key=REDACTED;b=2&sig=REDACTED"


def test_pieces_without_equals_after_a_secret_are_the_rest_of_it():
    # An unescaped `;` or `&` inside a password must not leave its tail in clear.
    assert redact_query("password=ab;cd&ef&page=2") == "password=REDACTED&page=2"


@pytest.mark.parametrize("key", ["page", "size", "sort", "code", "keyword", "monkey", "tokenizer", "max_tokens",
                                 "tokens", "sort_key", "token_type", "sig_alg", "session_start", "author",
                                 "Key-Pair-Id", "user[name]", "design", "passenger"])
def test_ordinary_analytics_keys_are_kept(key):
    assert redact_query(f"{key}=value") == f"{key}=value"


@pytest.mark.parametrize("key", SPELLINGS + SECRET_KEYS)
def test_every_secret_key_holds_a_trigger_the_fast_path_looks_for(key):
    # vectorised.py's pre-filter only sends strings holding a trigger (or `%`) through redact_query.
    assert is_sensitive_key(key)
    assert "%" in key or any(t in key.lower() for t in TRIGGERS)
