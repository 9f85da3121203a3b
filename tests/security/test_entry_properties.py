"""Any message on an entry topic becomes rows or dead letters, never an exception that stops the stream.

For calls.raw (the vectorised path and the exact per-event path), tickets.raw and sleep.records: any bytes, any
JSON, and seed-shaped events with fields swapped for arbitrary JSON, alone or in arrays. Each message gives one
outcome per event (a row, or one dead letter with a reason and the message's partition, offset and index); no
secret under a sensitive key survives into a row or a dead letter; redaction changes only what it must.
"""

from __future__ import annotations

import random
import re
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.broker.entry_messages import Invalid, decode_json
from pipeline.broker.records import Message
from pipeline.calls import vectorised
from pipeline.calls.normalize import normalize_messages
from pipeline.calls.redact import REDACTED, is_sensitive_key, redact_query
from pipeline.dlq import DeadLetter
from pipeline.ids import SourceIds
from pipeline.predictions.records import validate_messages
from pipeline.tickets.normalize import normalize_messages as normalize_tickets
from tests.unit.test_normalize_vectorised import base_event, both_paths
from tests.unit.test_sleep_records import rec as sleep_record
from tests.unit.test_tickets_normalize import conversation, env, ticket

# Derandomized: the same examples on every run, so CI is deterministic; an example a random run once found is
# pinned below with @example (set derandomize=False by hand to explore new ones).
PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
HEAVY = settings(PROPERTY, max_examples=120)  # each example runs both calls paths over several messages
PARTITION, OFFSET, TS_MS = 2, 4242, 1_764_064_800_000
make_id = SourceIds("cluster-p", "calls.raw")

scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=12)
deeply_nested = st.integers(250, 1100).map(lambda d: b"[" * d + b"]" * d)


def mutated(doc: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A seed-shaped document with some fields dropped or swapped for any JSON."""
    fields = sorted(doc)
    return st.fixed_dictionaries({
        "drop": st.lists(st.sampled_from(fields), max_size=3),
        "swap": st.dictionaries(st.sampled_from(fields), json_values, max_size=3),
    }).map(lambda c: {k: v for k, v in (doc | c["swap"]).items() if k not in c["drop"]})


def messages(seed_docs: list[dict[str, Any]]) -> st.SearchStrategy[bytes | None]:
    seeded = st.sampled_from(seed_docs).flatmap(mutated)
    docs = seeded | json_values | st.lists(seeded | json_values, max_size=4)
    return st.none() | st.binary(max_size=120) | docs.map(orjson.dumps) | deeply_nested


def outcomes(value: bytes | None) -> tuple[int, bool]:
    """How many events the message holds (each is a row or a letter) and whether it is an array of them."""
    try:
        parsed = decode_json(value)
    except Invalid:
        return 1, False
    return (len(parsed), True) if isinstance(parsed, list) else (1, False)


def assert_letters(dead: list[DeadLetter], topic: str, value: bytes | None) -> None:
    n, batch = outcomes(value)
    for letter in dead:
        assert isinstance(letter.error, str) and letter.error.strip()
        assert (letter.topic, letter.partition, letter.offset) == (topic, PARTITION, OFFSET)
        assert (letter.index in range(n)) if batch else letter.index is None
        orjson.loads(letter.to_json())  # the record the .dlq topic gets is always writable


CALLS_SEEDS = [base_event(random.Random(i)) for i in range(3)]


@HEAVY
@given(st.lists(messages(CALLS_SEEDS), min_size=1, max_size=4))
@example([b"[" * 300 + b"]" * 300])
@example([b'{"":[null,null]}'])  # found in CI: Arrow's combine_chunks failed on it and stopped the fast path
def test_calls_raw_every_message_is_rows_or_one_letter_each_on_both_paths(values: list[bytes | None]) -> None:
    for value in values:
        records, dead = normalize_messages("calls.raw", [Message(PARTITION, OFFSET, TS_MS, value)], make_id)
        assert len(records) + len(dead) == outcomes(value)[0]
        assert len({d.index for d in dead}) == len(dead)
        assert_letters(dead, "calls.raw", value)
    both_paths(values, partition=PARTITION)  # the vectorised path: the same rows and the same letters


SLEEP_SEEDS = [sleep_record(), sleep_record(kind="questionnaire", data={"instrument": "ISI", "total_score": 12})]


@PROPERTY
@given(messages(SLEEP_SEEDS))
@example(b"[" * 300 + b"]" * 300)  # orjson writes back 254 levels, not the 1024 it reads
@example(orjson.dumps(sleep_record(kind=["diary"])))  # an unhashable kind raised TypeError past pydantic
def test_sleep_records_every_message_is_rows_or_one_letter_each(value: bytes | None) -> None:
    rows, dead = validate_messages("sleep.records", [Message(PARTITION, OFFSET, TS_MS, value)])
    assert len(rows) + len(dead) == outcomes(value)[0]
    assert len({d.index for d in dead}) == len(dead)
    assert_letters(dead, "sleep.records", value)


TICKET_SEEDS = [env("ticket", ticket()), env("conversation", conversation())]


@PROPERTY
@given(messages(TICKET_SEEDS))
@example(b"[" * 300 + b"]" * 300)
@example(b"[" * 1000 + b"]" * 1000)  # the secret scan recursed past Python's limit
def test_tickets_raw_every_message_is_rows_or_letters_naming_each_failed_record(value: bytes | None) -> None:
    tables, dead = normalize_tickets("tickets.raw", [Message(PARTITION, OFFSET, TS_MS, value)])
    rows = sum(map(len, tables.values()))
    n, batch = outcomes(value)
    assert_letters(dead, "tickets.raw", value)
    if rows == 0:  # nothing became a row: every record of the message has its letter
        assert {d.index for d in dead} == (set(range(n)) if batch else {None})


# --- Redaction -------------------------------------------------------------------------------------------------

SECRET_WORDS = ["token", "access_token", "auth_token", "password", "passwd", "secret", "client_secret", "api_key",
                "apikey", "x-api-key", "sig", "signature", "key", "session_id", "jwt", "credentials",
                "authorization", "X-Amz-Signature", "AWSAccessKeyId", "private_key"]


@st.composite
def secret_keys(draw: st.DrawFn) -> str:
    """A sensitive key as clients spell it: any case, `-`/`_`, camelCase, nested, dotted, percent-encoded."""
    key = draw(st.sampled_from(SECRET_WORDS))
    if draw(st.booleans()):
        key = key.replace(draw(st.sampled_from(["_", "-"])), draw(st.sampled_from(["_", "-"])))
    key = draw(st.sampled_from([key, key.upper(), key.lower(), key.title(), key.swapcase()]))
    wrap = draw(st.sampled_from(["{}", "user[{}]", "a[b][{}]", "user.{}", "credentials.{}", "{}[]", "{}[0]"]))
    key = wrap.format(key)
    if draw(st.booleans()):
        key = "".join(f"%{ord(c):02X}" if c in "_-[]" else c for c in key)
    return key


plain_keys = st.text(st.characters(codec="ascii", categories=["L", "N"], include_characters="_-."),
                     min_size=1, max_size=12).filter(lambda k: not is_sensitive_key(k))
values = st.text(st.characters(codec="ascii", categories=["L", "N"], include_characters="-._~%+"), min_size=1,
                 max_size=16)


@PROPERTY
@given(st.lists(st.tuples(secret_keys() | plain_keys, values, st.sampled_from("&;")), min_size=1, max_size=6))
def test_redaction_leaves_no_sensitive_value_and_every_other_parameter_as_it_was(params) -> None:
    query = "".join(f"{k}={v}{sep}" for k, v, sep in params)[:-1]
    out = redact_query(query)
    got = re.split(r"[&;]", out)
    assert len(got) == len(params)  # no value here holds a separator, so nothing is swallowed
    for (key, value, _), part in zip(params, got, strict=True):
        assert part == (f"{key}={REDACTED}" if is_sensitive_key(key) else f"{key}={value}")


@PROPERTY
@given(st.text(max_size=60) | st.lists(st.tuples(secret_keys() | plain_keys, values), max_size=4).map(
    lambda ps: "&".join(f"{k}={v}" for k, v in ps)))
@example("a=1;X_Api_Key=k")
@example("user%5Bpassword%5D=x")
@example("ses-sion=x")
def test_redaction_changes_only_queries_with_a_sensitive_key_and_the_fast_path_sees_them(query: str) -> None:
    keys = [p.partition("=")[0] for p in re.split(r"[&;]", query) if "=" in p]
    if not any(is_sensitive_key(k) for k in keys):
        assert redact_query(query) == query
    if redact_query(query) != query:  # the fast path's pre-filter must send this string through redact_query
        assert re.search(vectorised._MAY_REDACT, query)


@HEAVY
@given(base=st.sampled_from(CALLS_SEEDS).flatmap(mutated), key=secret_keys(),
       where=st.sampled_from(["path", "query_string", "header"]), sep=st.sampled_from("&;"))
def test_a_secret_in_a_call_reaches_neither_a_row_nor_a_dead_letter(base, key, where, sep) -> None:
    secret = "Zq9SECRETvalue7"
    event = dict(base)
    if where == "path":
        event["path"] = f"{event.get('path') if isinstance(event.get('path'), str) else '/x'}?a=1{sep}{key}={secret}"
    elif where == "query_string":
        event["query_string"] = f"page=2{sep}{key}={secret}"
    else:
        event["request_headers"] = {"X-Tenant-ID": "1", key: secret}
    value = orjson.dumps(event)
    for batch in ([value], [orjson.dumps([event, 7])]):
        records, dead = normalize_messages("calls.raw", [Message(PARTITION, OFFSET, TS_MS, v) for v in batch],
                                           make_id)
        one = vectorised.Batch(PARTITION, [OFFSET], [TS_MS], batch)
        table, dead_fast, _, _ = vectorised.normalize_batch("calls.raw", one, make_id)
        stored = str(records) + str(table.to_pylist())
        letters = b"".join(d.to_json() + (d.value or b"") for d in dead + dead_fast)
        assert secret not in stored and secret.encode() not in letters
