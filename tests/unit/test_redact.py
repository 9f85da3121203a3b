"""Query-string redaction as OpenTelemetry scrubs `url.query`: secret values become REDACTED, all else untouched."""

from __future__ import annotations

import pytest

from pipeline.calls.redact import redact_query

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
                                   "tokens=abc&my_token=abc&sig_alg=HS256", "q=token%3Dabc"])
def test_left_byte_for_byte(query):
    # Empty values and bare keys carry no secret; other keys (even ones containing a secret's name) are kept.
    assert redact_query(query) == query
