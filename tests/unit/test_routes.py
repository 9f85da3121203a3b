"""A call's route (its path with identifier segments as {id}): one rule, the same from the one-path function and
the Arrow column function, on paths the way gateways send them."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.eventgen import SHAPES, EventFactory
from pipeline.calls.routes import route_template, route_templates


@pytest.mark.parametrize(("path", "route"), [
    ("/api/v1/tickets/42", "/api/v1/tickets/{id}"),
    ("/api/v1/tickets/42/conversations", "/api/v1/tickets/{id}/conversations"),
    ("/v1/sol-cod/predictions/71407bc932bedc3ca5096aef6d4e1bbc", "/v1/sol-cod/predictions/{id}"),
    ("/ingest/jobs/0b9e5a52-6a3c-4f0e-9d6e-2b8c1f0e7a11/progress", "/ingest/jobs/{id}/progress"),
    ("/api/aura/agents/agent_help_006/runs", "/api/aura/agents/{id}/runs"),  # a name with a number, 8+ long
    ("/users/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/users/{id}"),  # a ULID
    ("/reports/2026-11-25", "/reports/{id}"),
    ("/1/2/3", "/{id}/{id}/{id}"),  # adjacent ids, each its own
    ("/api/v1/users", "/api/v1/users"),  # v1: short, kept
    ("/oauth2/s3/x86", "/oauth2/s3/x86"),  # short words with a digit are words
    ("/v1/sleep-quality-cod/records", "/v1/sleep-quality-cod/records"),  # long words without a digit
    ("/환불/12", "/환불/{id}"),
    ("/files/é1234567", "/files/{id}"),  # 8 characters, 9 bytes: counted in characters
    ("/a//b/", "/a//b/"), ("/", "/"), ("", ""),
    (None, None),
])
def test_identifier_segments_become_id_and_words_stay(path, route):
    assert route_template(path) == route
    assert route_templates(pa.array([path], pa.string())).to_pylist() == [route]


def test_seed_shaped_paths_fall_into_the_endpoints_they_were_made_from():
    gen = EventFactory(seed=7, variants=SHAPES["seed"])
    paths = [gen.event("t", i)["path"] for i in range(5000)]
    routes = route_templates(pa.array(paths)).to_pylist()
    assert routes == [route_template(p) for p in paths]
    assert len(set(paths)) > 3000  # raw paths: mostly one call each
    assert len(set(routes)) <= 20  # the generator's 20 endpoints
    assert "/api/v1/tickets/{id}/conversations" in routes and "/api/aura/chat/completions" in routes


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(st.one_of(
    st.text(alphabet="abcXYZ019_-.é", max_size=12), st.from_regex(r"[0-9]{1,10}", fullmatch=True),
    st.text(max_size=10)), max_size=6).map("/".join)), max_size=40))
def test_the_column_function_agrees_with_the_one_path_function(paths):
    column = pa.array(paths, pa.string())
    expected = [route_template(p) for p in paths]
    assert route_templates(column).to_pylist() == expected
    if len(paths) > 2:  # a slice (an offset into the buffers) and a chunked column give the same
        assert route_templates(column.slice(1)).to_pylist() == expected[1:]
        chunked = pa.chunked_array([column.slice(0, 2), column.slice(2)], pa.string())
        assert route_templates(chunked).to_pylist() == expected
