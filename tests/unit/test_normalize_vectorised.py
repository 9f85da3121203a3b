"""The vectorised path (pipeline/calls/vectorised.py) against the exact per-event path: same records, same dead letters.

Property-style: thousands of generated events, most of them valid, each field sometimes swapped for an edge case
(every rule of seed 003 and every bad input of issue 3), sent in every encoding a gateway might use.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pyarrow as pa
import pytest

from pipeline.broker.records import Message
from pipeline.calls import vectorised
from pipeline.calls.arrow import CALLS_SCHEMA
from pipeline.calls.normalize import normalize_messages
from pipeline.calls.vectorised import Batch, normalize_batch
from pipeline.ids import SourceIds, derived_id

TOPIC = "calls.raw"
KAFKA_TS_MS = 1_764_064_800_000
make_id = SourceIds("cluster-a", TOPIC)
MISSING = object()

VARIANTS: dict[str, list[Any]] = {
    "method": ["GET", "post", "", "G3T", "GÉT", "A" * 16, "A" * 17, None, 5, True, MISSING],
    "path": ["/a", "/api/x?page=1&api_key=s3cr3t", "/a?", "/a??b=1", "?x", "a/b", "", "/ü/x?key=1",
             "http://gw.example.com:8080/api?page=1", "https://gw.example.com", "http://[::1/api", "/p?%74oken=s",
             "/line\nbreak?token=1", "/p?a=1;Auth_Token=x", "/p?user[password]=x", None, 1, MISSING],
    "query_string": [None, "", "?", "?page=1", "page=1", "api_key=x&b=2", "TOKEN=abc&size=10", "%6Bey=1", "a+b=1",
                     "\u212aey=s", "ключ=1&token=x", "sig", "x=1&password=", "cursor=EiebzKwhCmEFNVaN",
                     "a=1;token=x", "user[password]=p&page=2", "a[b][Token]=t", "user.password=p;b=1",
                     "credentials.secret=s", "X-API-Key=k", "X_Api_Key=k;b=2", "AUTH_TOKEN=t", "userPassword=p",
                     "PassWord=p", "api%5Fkey=k", "user%5Bpassword%5D=p", "password=ab;cd&e=1", "token[]=a&token[]=b",
                     "sort_key=a&keyword=b&monkey=c&max_tokens=9", "Ocp-Apim-Subscription-Key=k",
                     "user.Session_Id=s", "auth=a;credentials=c", "passphrase=p&client_assertion=x", 5, MISSING],
    "status_code": [200, 100, 599, 99, 600, "200", True, 200.0, 2**63, -1, None, MISSING],
    "latency_ms": [0, 35, -1, 35.5, 2.5, 2**63 - 1, 2**63, 2**64 - 1, "fast", True, None, MISSING],
    "request_size_bytes": [0, 18, -1, 1.5, 2**63, "18", False, None, MISSING],
    "response_size_bytes": [0, 500, -5, 2**64 - 1, None, MISSING],
    "tenant_id": ["1", "", 1, 0, 1.5, True, "wedosoft", 2**63 - 1, 999_999_999_999_999_999, -(2**63), 2**64 - 1,
                  1e3, None, MISSING],
    "user_id": ["u1", "", 42, -3, [1], {"id": 1}, 10**18, None, MISSING],
    "agent_id": ["agent_1", "", "a" * 100, "a" * 101, "é" * 100, "é" * 101, 5, None, MISSING],
    "ip_address": ["10.0.0.7", "2001:DB8:0:0::1", " 10.0.0.7 ", "999.0.0.1", "", "010.0.0.1", "::ffff:1.2.3.4", 5,
                   None, MISSING],
    "user_agent": ["curl/8.5", "", "NaN", "x:NaN", "Info: Inf", "\u0000", 7, None, MISSING],
    "trace_id": ["4bf92f3577b34da6a3ce929d0e0e4736", "", None, 3, MISSING],
    "error_code": ["COD_001", "", None, MISSING],
    "source": ["AURA", "", {"a": 1}, None, MISSING],
    "api_call_history_id": [None, "", "gw-123", 5, MISSING],
    "created_at": ["2026-11-25T10:00:00Z", "2026-11-25T10:00:00.123Z", "2026-11-25T19:00:00+09:00",
                   "2026-11-25 10:00:00", "2026-11-25T10:00:00.5", "2026-11-25T10:00:00.1234567Z",
                   "2026-02-30T00:00:00Z", "2026-11-25", "2026-11-25T10", "2026-11-25T24:00:00",
                   "2026-11-25T10:00:00+0900", "2026-11-25T10:00:00-23:59", "1969-12-31T23:59:59Z",
                   "0001-01-01T00:00:00+01:00", "2026-11-25T10:00:00z", "yesterday", "", 1_764_064_800,
                   1_764_064_800_000, 1.5, -1, True, None, MISSING],
    "request_headers": [None, {}, {"X-Tenant-ID": "1", "X-Agent-ID": "h"}, {"Content-Length": "18"}, ["x"], "s",
                        MISSING],
    "response_headers": [None, {}, {"Content-Type": "text/event-stream"}, 5, MISSING],
}
EXTRAS: list[dict[str, Any]] = [{"extra": 1}, {"extra": "s"}, {"meta": {"a": [1, 2.5, None]}}, {"big": 10**30},
                                {"nested": [[[]]]}]
RAW_BAD: list[bytes | None] = [
    b"{not json", b"\xff\xfe\x00garbage", b"42", b"null", b'"GET /api"', None, b"", b"[]", b"{}", b"[1, {}]",
    b'{"method":"GET","path":"/a","status_code":200,"x":NaN}',
    b'{"method":"GET","path":"/a","status_code":200,"x":[1,-Infinity]}',
    b'{"method":"GET","path":"/a","status_code":200,"x":{"y":Inf}}',
    b'{"method":"GET","path":"/a","status_code":200}{"method":"GET","path":"/b","status_code":200}',
    b'{"method":"GET","path":"/a","status_code":200}\n{"method":"GET","path":"/b","status_code":200}',
    b'{"method":"GET","method":"POST","path":"/a","status_code":200}',
    b'{"method":"GET","\\u006dethod":"PUT","path":"/a","status_code":200}',
    b'{"method":"GET","path":"/a","status_code":200,"x":' + b"[" * 1100 + b"]" * 1100 + b"}",
    b'{"method":"GET","path":"/a","status_code":200,"x":' + b"[" * 900 + b"]" * 900 + b"}",
    b' {"method":"GET","path":"/a","status_code":200}',
    b'{"method":"GET","path":"/a","status_code":200} x',
    b'{"method":"GET","path":"/a","status_code":200,"x":"\xff"}',
    b'{"method":"GET","path":"/\xed\xa0\x80","status_code":200}',  # a surrogate, UTF-8 encoded: not UTF-8
    b'{"method":"GET","path":"/\xc0\xaf","status_code":200}',  # an overlong '/'
    b'{"method":"GET","path":"/\xf4\x90\x80\x80","status_code":200}',  # past U+10FFFF
    '{"method":"GET","path":"/\ud55c\uad6d","status_code":200}'.encode(),  # Hangul, valid
    b'{"method":"GET","path":"/\\ud800","status_code":200}',
    b'{"method":"GET","path":"/\\ud83d\\ude00","status_code":200}',
    b'{"method":"GET","path":"/a","status_code":200,}',
    b'{"method":"GET","path":"/a","status_code":200,"user_agent":"tab\there"}',
    b'\xef\xbb\xbf{"method":"GET","path":"/a","status_code":200}',
    b'{"method":"GET","path":"/a","status_code":200,"latency_ms":1e2}',
    b'{"method":"GET","path":"/a","status_code":200,"x":1e999}',
    b'{"tenant_id":-0,"method":"GET","path":"/a","status_code":200}',
    b'{"tenant_id":7 ,"user_id" : 8,"method":"GET","path":"/a","status_code":200}',
    b'{"tenant_id":007,"method":"GET","path":"/a","status_code":200}',
    b'{"tenant_id":1,"tenant_id":"t2","method":"GET","path":"/a","status_code":200}',
    b'{"x\\"tenant_id":5,"tenant_id":"t","method":"GET","path":"/a","status_code":200}',
    b'{"path":"/\\"tenant_id\\":5","tenant_id":6,"method":"GET","status_code":200}',
    orjson.dumps({"method": "GET", "path": "/a", "status_code": 200, "user_agent": "x" * (1 << 20)}),
]


def base_event(rng: random.Random) -> dict[str, Any]:
    return {
        "tenant_id": str(rng.randrange(1, 40)), "user_id": str(rng.randrange(5000)), "agent_id": "agent_7",
        "method": rng.choice(["GET", "POST"]), "path": f"/api/v1/tickets/{rng.randrange(100)}",
        "query_string": rng.choice([None, "page=2&size=20", f"token={rng.getrandbits(64):x}"]),
        "status_code": rng.choice([200, 201, 404, 500]), "latency_ms": rng.randrange(2000),
        "request_size_bytes": rng.choice([None, 120]), "response_size_bytes": rng.randrange(60_000),
        "ip_address": f"10.0.{rng.randrange(3)}.{rng.randrange(1, 255)}", "user_agent": "okhttp/4.12.0",
        "trace_id": f"{rng.getrandbits(128):032x}", "error_code": None, "source": "AURA",
        "created_at": f"2026-11-25T10:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z",
    }


def generated_event(rng: random.Random, p_change: float) -> dict[str, Any]:
    event = base_event(rng)
    for name, pool in VARIANTS.items():
        if rng.random() < p_change:
            value = rng.choice(pool)
            if value is MISSING:
                event.pop(name, None)
            else:
                event[name] = value
    if rng.random() < 0.05:
        event |= rng.choice(EXTRAS)
    return event


def dumps(doc: Any) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError:  # ints past 64 bits: orjson will not write them, the json module will
        return json.dumps(doc, ensure_ascii=False).encode()


def encoded(rng: random.Random, p_change: float) -> bytes | None:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice(RAW_BAD)
    event = generated_event(rng, p_change)
    if roll < 0.08:
        return dumps([event, generated_event(rng, p_change), 7])
    if roll < 0.10:  # what the api publishes: a batch of events, read on the fast path when every one is good
        return dumps([event, *(generated_event(rng, p_change / 4) for _ in range(rng.randrange(0, 4)))])
    if roll < 0.12:
        return json.dumps(event).encode()  # \u escapes for everything non-ASCII
    if roll < 0.13:
        return json.dumps(event, indent=1, ensure_ascii=False).encode()  # one event over many lines
    if roll < 0.15:
        return json.dumps(dict(reversed(list(event.items()))), separators=(" , ", " : ")).encode()
    return dumps(event)


def batch_of(partition: int, msgs: list[Message]) -> Batch:
    return Batch(partition, [m.offset for m in msgs], [m.timestamp_ms for m in msgs], [m.value for m in msgs])


def both_paths(values: list[bytes | None], partition: int = 3) -> None:
    msgs = [Message(partition, 1000 + i, KAFKA_TS_MS + i, v) for i, v in enumerate(values)]
    records, dead = normalize_messages(TOPIC, msgs, make_id)
    table, dead_fast, _, _ = normalize_batch(TOPIC, batch_of(partition, msgs), make_id)
    expected = pa.Table.from_pylist(records, schema=CALLS_SCHEMA)
    assert table.schema.equals(CALLS_SCHEMA)
    if not table.equals(expected):
        got, want = table.to_pylist(), expected.to_pylist()
        assert len(got) == len(want)
        diff = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
        pytest.fail(f"record {diff} differs:\n fast  {got[diff]}\n exact {want[diff]}")
    key = [(d.error, d.topic, d.partition, d.offset, d.index, d.value) for d in dead]
    assert [(d.error, d.topic, d.partition, d.offset, d.index, d.value) for d in dead_fast] == key
    assert_sources(msgs)


def assert_sources(msgs: list[Message]) -> None:
    """Each record's source_seq (its offset, its rank in the message) and whether its id came with the event."""
    want_seqs, want_supplied = [], []
    for m in msgs:
        made = []
        recs, _ = normalize_messages(TOPIC, [m], lambda p, o, i, made=made: made.append(make_id(p, o, i)) or made[-1])
        want_seqs += [m.offset << 20 | rank for rank in range(len(recs))]
        want_supplied += [r["api_call_history_id"] not in made for r in recs]
    got = normalize_batch(TOPIC, batch_of(msgs[0].partition, msgs), make_id)
    assert got.seqs.to_pylist() == want_seqs
    assert got.supplied.to_pylist() == want_supplied


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_gives_exactly_the_exact_paths_records_and_dead_letters(seed):
    rng = random.Random(seed)
    values = [encoded(rng, p_change=rng.choice([0.0, 0.02, 0.08, 0.3])) for _ in range(rng.choice([1, 20, 150]))]
    both_paths(values)


@pytest.mark.parametrize("seed", range(10))
def test_small_chunks_and_exhausted_retries_still_agree(seed, monkeypatch):
    monkeypatch.setattr(vectorised, "CHUNK", 7)
    monkeypatch.setattr(vectorised, "_RETRIES", 1)
    rng = random.Random(1000 + seed)
    both_paths([encoded(rng, p_change=0.1) for _ in range(120)])


@pytest.mark.parametrize(("field", "pool"), list(VARIANTS.items()), ids=list(VARIANTS))
def test_every_variant_of_every_field_agrees(field, pool):
    rng = random.Random(field)
    events = []
    for value in pool:
        event = base_event(rng)
        if value is MISSING:
            event.pop(field, None)
        else:
            event[field] = value
        events.append(event)
    both_paths([dumps(e) for e in events])


def test_every_raw_bad_message_agrees_alone_and_between_good_ones():
    rng = random.Random(5)
    for bad in RAW_BAD:
        both_paths([bad])
        both_paths([orjson.dumps(base_event(rng)), bad, orjson.dumps(base_event(rng))])


def test_common_case_never_reaches_the_exact_path(monkeypatch):
    """Valid one-object messages (with secrets to redact, blanks, missing times) are all vectorised."""
    seen: list[Message] = []
    real = vectorised.normalize_messages

    def spy(topic, msgs, make_id):
        seen.extend(msgs)
        return real(topic, msgs, make_id)

    monkeypatch.setattr(vectorised, "normalize_messages", spy)
    rng = random.Random(9)
    values = []
    for i in range(3000):
        event = base_event(rng)
        if i % 7 == 0:
            event |= {"user_agent": "", "created_at": None, "query_string": "?a=1&api_key=k"}
        if i % 13 == 0:
            event |= {"query_string": "a=1;X-API-Key=k&user[password]=p&user.session_id=s"}
        if i % 11 == 0:
            event |= {"path": "/api/users?page=1&size=10", "extra": {"x": [1, 2]}, "api_call_history_id": "gw-1"}
        values.append(orjson.dumps(event))
    both_paths(values)
    assert seen == []


def seed_shaped(rng: random.Random, i: int) -> dict[str, Any]:
    """An event as seed 003's gateway serialises its DTO: numeric ids, any method case, a +09:00 time."""
    event = base_event(rng) | {"tenant_id": rng.randrange(1, 17), "user_id": rng.randrange(1, 10**12),
                               "method": rng.choice(["get", "Post", "PATCH", "delete"]),
                               "created_at": f"2026-11-25T19:{rng.randrange(60):02d}:00.{i % 1000:03d}+09:00"}
    if i % 5 == 0:
        event["query_string"] = f"page=2&access_token={rng.getrandbits(64):x}"
    if i % 3 == 0:
        event["request_size_bytes"] = None
    if i % 4 == 0:
        event |= {"route_id": "r-7", "retry_count": 0}
    return event


def test_seed_shaped_events_never_reach_the_exact_path(monkeypatch):
    """Seed 003's own spelling is ordinary input: it takes the vectorised path like the native one."""
    seen: list[Message] = []
    real = vectorised.normalize_messages
    monkeypatch.setattr(vectorised, "normalize_messages", lambda t, m, f: (seen.extend(m), real(t, m, f))[1])
    rng = random.Random(11)
    both_paths([orjson.dumps(seed_shaped(rng, i)) for i in range(3000)])
    assert seen == []


@pytest.mark.parametrize("seed", range(6))
def test_two_gateways_on_one_topic_numeric_and_text_ids_in_one_chunk_agree(seed, monkeypatch):
    """Numbers and text for the same id in one chunk: quoted and read as text, still the exact path's records."""
    seen: list[Message] = []
    real = vectorised.normalize_messages
    monkeypatch.setattr(vectorised, "normalize_messages", lambda t, m, f: (seen.extend(m), real(t, m, f))[1])
    rng = random.Random(200 + seed)
    values = [orjson.dumps(seed_shaped(rng, i) if rng.random() < 0.5 else base_event(rng)) for i in range(500)]
    bad = [i for i in range(0, 500, 97)]
    for i in bad:  # ids the exact path refuses, among them
        values[i] = orjson.dumps(base_event(rng) | {"tenant_id": rng.choice([1.5, True, [1]])})
    both_paths(values)
    assert sorted({m.offset - 1000 for m in seen}) == bad


@pytest.mark.parametrize("odd", [1.5, True, 2**64 - 1, [7]])
def test_one_odd_id_sends_only_its_own_message_the_exact_way(odd, monkeypatch):
    """Numeric ids everywhere and one that is not an integer Arrow can read: the chunk stays vectorised."""
    seen: list[Message] = []
    real = vectorised.normalize_messages
    monkeypatch.setattr(vectorised, "normalize_messages", lambda t, m, f: (seen.extend(m), real(t, m, f))[1])
    rng = random.Random(17)
    values = [orjson.dumps(seed_shaped(rng, i)) for i in range(300)]
    values[123] = dumps(seed_shaped(rng, 123) | {"user_id": odd})
    both_paths(values)
    assert {m.offset - 1000 for m in seen} == {123}


def test_source_ids_many_are_derived_ids():
    ids = SourceIds("cluster-b", TOPIC)
    offsets = [0, 1, 99, 10**12]
    assert ids.many(2, offsets) == [derived_id("cluster-b", TOPIC, 2, o, None) for o in offsets]
    assert ids(2, 5, 3) == derived_id("cluster-b", TOPIC, 2, 5, 3)


def letters_and_sources(out: vectorised.Normalized) -> tuple:
    return ([(d.error, d.partition, d.offset, d.index, d.value) for d in out.dead], out.seqs.to_pylist(),
            out.supplied.to_pylist())


@pytest.mark.parametrize("seed", range(12))
def test_a_fetch_over_several_partitions_gives_each_partition_what_it_gives_alone(seed, monkeypatch):
    """The worker parses a whole fetch at once: chunks that straddle partitions, messages of one partition
    going the exact way beside another's fast rows, must leave each partition's records, dead letters, source
    seqs and id origins as the partition alone makes them."""
    from tests.unit.test_gateway_formats import kong_events

    rng = random.Random(2000 + seed)
    if seed % 2:
        monkeypatch.setattr(vectorised, "CHUNK", rng.choice([7, 40]))
    kong = [orjson.dumps(e) for e in kong_events(30, seed=seed)]
    batches = []
    for n, partition in enumerate(rng.sample(range(12), rng.choice([2, 3, 5]))):
        size = rng.choice([0, 1, 9, 60, 140]) if n else rng.choice([9, 60])
        values = [rng.choice(kong) if seed % 3 == 0 and rng.random() < 0.6 else encoded(rng, p_change=0.05)
                  for _ in range(size)]
        first = rng.randrange(0, 10**6)
        batches.append(Batch(partition, list(range(first, first + size)),
                             [KAFKA_TS_MS + i for i in range(size)], values))
    together = vectorised.normalize_batches(TOPIC, batches, make_id)
    assert len(together) == len(batches)
    for batch, out in zip(batches, together, strict=True):
        alone = normalize_batch(TOPIC, batch, make_id)
        assert out.table.equals(alone.table)  # as Arrow: a time before year 1 has no Python datetime
        assert letters_and_sources(out) == letters_and_sources(alone)
    assert sum(out.table.num_rows for out in together) > 0


def test_arrays_of_good_events_are_read_on_the_fast_path_and_a_bad_element_sends_its_array_exact(monkeypatch):
    """What the api publishes (a POSTed batch, an OTLP export) is an array per message: read vectorised, its
    derived ids carrying each element's index; an array holding one bad element or a non-object goes exact."""
    from tests.unit.test_gateway_formats import read_exactly

    rng = random.Random(77)
    good = [dumps([{**base_event(rng), "api_call_history_id": None} for _ in range(rng.randrange(1, 6))])
            for _ in range(30)]
    bad = [dumps([base_event(rng), {**base_event(rng), "status_code": 999}]), dumps([base_event(rng), 7]),
           dumps([]), dumps([[base_event(rng)]])]
    values = good + bad + [dumps(base_event(rng)) for _ in range(20)]
    rng.shuffle(values)
    assert read_exactly(values, monkeypatch) == set(bad)  # and both paths agree on every record and letter
    out = normalize_batch(TOPIC, batch_of(3, [Message(3, 500 + i, KAFKA_TS_MS, v) for i, v in enumerate(values)]),
                          make_id)
    first = values.index(good[0])
    ids = [r for r, s in zip(out.table.column("api_call_history_id").to_pylist(), out.seqs.to_pylist(), strict=True)
           if s >> 20 == 500 + first]
    assert ids == [derived_id("cluster-a", TOPIC, 3, 500 + first, i) for i in range(len(orjson.loads(good[0])))]
