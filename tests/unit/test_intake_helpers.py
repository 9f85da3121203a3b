"""The api's per-event shortcuts on `POST /v1/call-histories` give what the general functions they replace give:
a stored row must not depend on which of them made it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from api.call_intake import READ
from pipeline.calls.formats import KEPT_HEADERS, kept_headers
from pipeline.calls.normalize import iso_micros
from pipeline.calls.redact import redact_json, redact_values
from pipeline.ids import random_id

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) |
                     st.sampled_from(["", "a=b", "/p?token=x&page=2", "x?api_key=k", "sig=1;b", "plain"]) | st.text(),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["token", "page", "password", "q", "x"]) | st.text(max_size=8), inner,
                         max_size=3), max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(READ), _json, max_size=len(READ)))
def test_redact_values_on_a_native_event_is_redact_json(fields):
    assert redact_values(dict(fields)) == redact_json(fields)


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=253_402_300_799_999_999))  # up to 9999-12-31T23:59:59.999999
def test_iso_micros_is_isoformat(micros):
    assert iso_micros(micros) == (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)).isoformat()


_names = st.sampled_from(sorted(KEPT_HEADERS) + ["host", "accept", "Authorization", "X-Tenant-ID", "X-USER-ID",
                                                 "Content-Type", "İx", "123"]) | st.text(max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_names, st.text(max_size=5) | st.lists(st.text(max_size=3), max_size=3) | st.integers(),
                       max_size=8))
def test_kept_headers_are_the_read_names_lowered_whatever_their_case(headers):
    want = {}
    for key, v in headers.items():  # the definition: every name lowered, the read ones kept, the last one wins
        if key.lower() in KEPT_HEADERS:
            want[key.lower()] = ", ".join(map(str, v)) if isinstance(v, list) else v
    assert kept_headers(headers, "request.headers") == want


def test_random_ids_are_version_4_uuids_and_do_not_repeat():
    ids = [random_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for i in ids:
        u = uuid.UUID(hex=i)
        assert u.hex == i and u.version == 4 and u.variant == uuid.RFC_4122
