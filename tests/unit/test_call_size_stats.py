"""Seed 003's size monitoring in the call stats, on a real DuckDB file: size percentiles, latency per request-size
class, large requests and responses, checked against the same figures computed in Python from the rows."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta, timezone

from pipeline.calls.routes import route_template
from pipeline.storage.queries.calls import SIZE_CLASSES, CallFilters, call_stats

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _rows(n: int = 400) -> list[tuple]:
    rnd = random.Random(7)
    rows = []
    for i in range(n):
        size = None if i % 5 == 0 else int(10 ** rnd.uniform(1, 7.5))  # NULL for a GET without a body
        response = None if i % 7 == 0 else int(10 ** rnd.uniform(1, 7))
        rows.append((f"c{i}", "1" if i % 4 else "2", f"a{i % 3}", "POST", "/v1/x", 200 if i % 9 else 500,
                     rnd.randint(1, 2000), size, response, NOW - timedelta(seconds=i)))
    return rows


def _insert(con, rows) -> None:
    """Rows as the writer stores them: with the route of their path."""
    con.executemany("INSERT INTO sys_api_call_histories (api_call_history_id, tenant_id, agent_id, method, path, "
                    "status_code, latency_ms, request_size_bytes, response_size_bytes, created_at, route) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [(*r, route_template(r[4])) for r in rows])


def _quantile(values: list[float], q: float) -> float:
    """DuckDB's quantile_cont: linear interpolation between closest ranks."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def test_size_figures_match_the_rows(materializer):
    rows = _rows()
    _insert(materializer.con, rows)
    threshold = 1 << 20
    sizes = call_stats(materializer.con.cursor(), CallFilters(), "hour", 5, threshold)["sizes"]

    requests = [r[7] for r in rows if r[7] is not None]
    assert sizes["request"]["count"] == len(requests)
    assert sizes["request"]["max_bytes"] == max(requests)
    assert abs(sizes["request"]["p95_bytes"] - _quantile(requests, 0.95)) < 1e-6
    assert sizes["response"]["count"] == len([r for r in rows if r[8] is not None])

    labels = ["unknown", *(label for label, _ in SIZE_CLASSES)]
    assert [c["size_class"] for c in sizes["latency_by_request_size"]] == labels
    assert sum(c["count"] for c in sizes["latency_by_request_size"]) == len(rows)
    small = [r[6] for r in rows if r[7] is not None and r[7] < 1024]
    first = sizes["latency_by_request_size"][1]
    assert first["count"] == len(small)
    assert abs(first["p50_ms"] - statistics.median(small)) < 1e-6
    unknown = sizes["latency_by_request_size"][0]
    assert unknown["count"] == len(rows) - len(requests)

    big = sorted((r for r in rows if r[7] is not None and r[7] >= threshold), key=lambda r: r[9], reverse=True)
    large = sizes["large_requests"]
    assert large["threshold_bytes"] == threshold and large["count"] == len(big) > 5
    assert [c["api_call_history_id"] for c in large["latest"]] == [r[0] for r in big[:5]]
    assert all(c["request_size_bytes"] >= threshold for c in large["latest"])
    big_responses = [r for r in rows if r[8] is not None and r[8] >= threshold]
    assert sizes["large_responses"]["count"] == len(big_responses)


def test_size_figures_keep_to_the_filters_and_the_threshold(materializer):
    rows = _rows()
    _insert(materializer.con, rows)
    stats = call_stats(materializer.con.cursor(), CallFilters(tenant_id="2"), "hour", 10, 10_000)
    mine = [r for r in rows if r[1] == "2"]
    assert stats["total"]["count"] == len(mine)
    assert sum(c["count"] for c in stats["sizes"]["latency_by_request_size"]) == len(mine)
    assert stats["sizes"]["large_requests"]["count"] == len([r for r in mine if r[7] is not None and r[7] >= 10_000])
    assert {c["tenant_id"] for c in stats["sizes"]["large_requests"]["latest"]} == {"2"}
    assert [t["tenant_id"] for t in stats["top_tenants"]] == ["2"]  # another tenant is never named


def test_an_empty_scope_answers_zeros_not_errors(materializer):
    stats = call_stats(materializer.con.cursor(), CallFilters(tenant_id="nobody"), "hour", 10, 1)
    sizes = stats["sizes"]
    assert sizes["request"] == {"count": 0, "p50_bytes": None, "p95_bytes": None, "p99_bytes": None,
                                "max_bytes": None}
    assert all(c["count"] == 0 and c["p95_ms"] is None for c in sizes["latency_by_request_size"])
    assert sizes["large_requests"] == {"threshold_bytes": 1, "count": 0, "latest": []}


def test_per_route_figures_match_the_rows_for_the_top_routes_only(materializer):
    """Per method and route, the top ones by count: each route's own figures, for one tenant's filter too, with
    ties in count broken by method and route, NULL latencies ignored, and ids in paths one route."""
    rnd = random.Random(3)
    rows = []
    paths = ([("GET", f"/v1/items/{i}") for i in range(5)] + [("GET", f"/v1/x{i}") for i in range(40)]
             + [("get", "/v1/items/1"), ("POST", "/v1/x")])
    for i in range(900):
        method, path = paths[min(int(rnd.expovariate(0.15)), len(paths) - 1)]
        latency = None if i % 11 == 0 else rnd.randint(1, 3000)
        rows.append((f"r{i}", "1" if i % 3 else "2", "a", method, path, 500 if i % 13 == 0 else 200, latency, None,
                     None, NOW - timedelta(seconds=i)))
    _insert(materializer.con, rows)
    for tenant in (None, "1"):
        got = call_stats(materializer.con.cursor(), CallFilters(tenant_id=tenant), "hour", 5)["routes"]
        mine = [r for r in rows if tenant is None or r[1] == tenant]
        groups: dict[tuple, list] = {}
        for r in mine:
            groups.setdefault((r[3], route_template(r[4])), []).append(r)
        top = sorted(groups, key=lambda k: (-len(groups[k]), k))[:5]
        assert ("GET", "/v1/items/{id}") in top
        assert [(g["method"], g["path"]) for g in got] == top
        for g, key in zip(got, top, strict=True):
            calls = groups[key]
            latencies = [r[6] for r in calls if r[6] is not None]
            assert g["count"] == len(calls)
            assert abs(g["error_rate"] - sum(r[5] >= 400 for r in calls) / len(calls)) < 1e-9
            for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
                assert abs(g[name] - _quantile(latencies, q)) < 1e-6


def test_the_time_series_buckets_every_call_by_its_utc_minute_hour_and_day(materializer):
    """The series buckets by arithmetic on microseconds, not by the calendar: it must give the UTC buckets the
    calendar gives, for offsets other than UTC, at bucket edges and before 1970."""
    kst = timezone(timedelta(hours=9))
    times = [datetime(2026, 11, 25, 9, 59, 59, 999999, tzinfo=kst), datetime(2026, 11, 25, 10, 0, tzinfo=kst),
             datetime(2026, 11, 25, 0, 30, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 30, tzinfo=UTC),
             datetime(1969, 12, 31, 0, 0, tzinfo=UTC), datetime(2026, 3, 1, 0, 0, tzinfo=UTC)]
    rows = [(f"s{i}", "1", "a", "GET", "/", 500 if i % 2 else 200, 5, None, None, t) for i, t in enumerate(times)]
    _insert(materializer.con, rows)
    for bucket, unit in (("minute", timedelta(minutes=1)), ("hour", timedelta(hours=1)), ("day", timedelta(days=1))):
        series = call_stats(materializer.con.cursor(), CallFilters(), bucket, 5)["series"]
        want: dict[str, list[int]] = {}
        for i, t in enumerate(times):
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            start = epoch + ((t - epoch) // unit) * unit
            counts = want.setdefault(start.replace(tzinfo=None).isoformat() + "Z", [0, 0])
            counts[0] += 1
            counts[1] += i % 2
        assert [(s["bucket"], s["count"], s["errors"]) for s in series] == [(k, *v) for k, v in sorted(want.items())]


def test_calls_written_by_the_pipeline_are_counted_per_route_and_can_be_filtered_by_it(materializer):
    """Rows the materializer writes carry their route: /api/items/0 ... /api/items/10 are one route, the call
    rows keep their own paths, and ?route= selects every call of the route."""
    from aiokafka import TopicPartition

    from pipeline.calls.routes import route_template
    from tests.helpers import call_event, normalized

    materializer._write({TopicPartition("calls.normalized", 0): normalized(0, 200)})
    events = [call_event(i) for i in range(200)]
    cur = materializer.con.cursor()
    assert cur.execute("SELECT count(DISTINCT path), count(DISTINCT route), count(*) FILTER (route IS NULL) "
                       "FROM sys_api_call_histories").fetchone() == (11, 1, 0)
    got = call_stats(cur, CallFilters(), "hour", 5)["routes"]
    by_method = {m: [e for e in events if e["method"] == m] for m in ("GET", "POST")}
    assert [(g["method"], g["path"], g["count"]) for g in got] == [
        ("GET", "/api/items/{id}", 100), ("POST", "/api/items/{id}", 100)]
    for g in got:
        latencies = [e["latency_ms"] for e in by_method[g["method"]]]
        assert abs(g["p95_ms"] - _quantile(latencies, 0.95)) < 1e-6
    assert {route_template(e["path"]) for e in events} == {"/api/items/{id}"}
    one = call_stats(cur, CallFilters(tenant_id="2", route="/api/items/{id}"), "hour", 5)["total"]["count"]
    assert one == sum(e["tenant_id"] == "2" for e in events) > 0
    assert call_stats(cur, CallFilters(route="/api/items/3"), "hour", 5)["total"]["count"] == 0  # a path is no route
