"""The common case of `calls.raw`, vectorised: one Arrow JSON parse per chunk of a fetch (whatever partitions it
spans), the checks in pyarrow.compute. Messages that are one event and messages that are arrays of events (what
the api publishes) are both read so.

A row leaves here only if `normalize_event` would accept it with the same values; everything else (header maps,
absolute URLs, fractions as ids, odd timestamps, an array with one bad element, anything the parser or a check
does not like) goes through the exact per-event path in `normalize.py`, so every rule and every DLQ reason is
written once. tests/unit/test_normalize_vectorised.py runs both paths over generated inputs and asserts
identical output.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from itertools import chain, groupby
from typing import NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pipeline.broker.entry_messages import MAX_VALUE_BYTES
from pipeline.broker.records import Batch
from pipeline.calls.arrow import CALLS_SCHEMA, SEQ_BITS
from pipeline.calls.formats import CAMEL, KEPT_HEADERS
from pipeline.calls.normalize import (
    MAX_AGENT_ID,
    IdFn,
    Message,
    canonical_ip,
    normalize_messages,
    redact_cached,
)
from pipeline.calls.redact import TRIGGERS
from pipeline.dlq import DeadLetter

_TEXT = ("api_call_history_id", "tenant_id", "user_id", "agent_id", "ip_address", "user_agent", "trace_id",
         "error_code", "source")
_INTS = ("latency_ms", "request_size_bytes", "response_size_bytes")
# Tenant and user ids come as text or as JSON numbers (seed 003's DTO declares them Long): Arrow infers them.
_IDS = ("tenant_id", "user_id", "tenantId", "userId")
_NATIVE = pa.schema(
    [(f.name, pa.int64() if pa.types.is_integer(f.type) else pa.string()) for f in CALLS_SCHEMA]
    + [("request_headers", pa.struct([])), ("response_headers", pa.struct([]))]
)
# Seed 003's DTO spelling of the same fields (formats.py): read in the same parse, used for the DTO's rows.
RAW_SCHEMA = pa.schema([*_NATIVE, *(pa.field(camel, _NATIVE.field(snake).type) for camel, snake in CAMEL.items())])
_DECLARED = pa.schema([f for f in RAW_SCHEMA if f.name not in _IDS])
# "infer": fields we do not read still show up as columns, so NaN/Inf in them (Arrow reads those literals,
# orjson rejects them) can be seen without scanning the bytes; the ids are read as whatever type they hold.
_PARSE = pj.ParseOptions(explicit_schema=_DECLARED, unexpected_field_behavior="infer")
# A chunk that mixes numeric and text ids (two gateways on one topic): numbers are quoted, then read as text.
_PARSE_QUOTED = pj.ParseOptions(explicit_schema=RAW_SCHEMA, unexpected_field_behavior="infer")
_MIXED_IDS = re.compile(r"Column\(/(?:tenant_id|user_id|tenantId|userId)\) changed from")
# Kong's log object carries ~40 fields the rules never read (route, service, tries, workspace...). A chunk whose
# first message looks like Kong's is read with only the read fields declared and the rest ignored: 5.8 against
# 11.7 us an event to parse. What "infer" let us see in the ignored fields is found on the bytes instead:
# NaN/Infinity (orjson refuses them, Arrow skips them) and a read header named in another case (the exact path
# lower-cases it) in `_kong_screens`, whether `querystring` holds anything in `_querystring_given`. Only Kong's
# fields are declared at first: 5.3 against 6.4 us an event with the native fields too. A chunk that turns out
# to hold other events is read again with both (`_PARSE_KONG_MIXED`); ids are declared as text there, and numeric
# ids, or a conversion Arrow cannot place in a row, send the chunk back to "infer".
_KONG_SCHEMA = pa.schema([
    ("request", pa.struct([("id", pa.string()), ("method", pa.string()), ("uri", pa.string()), ("size", pa.int64()),
                           ("headers", pa.struct([(h, pa.string()) for h in sorted(KEPT_HEADERS)])),
                           ("querystring", pa.struct([]))])),
    ("response", pa.struct([("status", pa.int64()), ("size", pa.int64()), ("headers", pa.struct([]))])),
    ("latencies", pa.struct([("request", pa.int64())])),
    ("started_at", pa.int64()), ("client_ip", pa.string()), ("consumer", pa.struct([])),
])
_PARSE_KONG = pj.ParseOptions(explicit_schema=_KONG_SCHEMA, unexpected_field_behavior="ignore")
_PARSE_KONG_MIXED = pj.ParseOptions(explicit_schema=pa.schema([*RAW_SCHEMA, *_KONG_SCHEMA]),
                                    unexpected_field_behavior="ignore")
_QS_GIVEN = "__querystring_given"
# A top-level (or nested: only headers, which go exact, and fields we do not read hold those) id that is an
# integer orjson reads as one: at most 18 digits, no `-0`, no fraction or exponent, Jackson's spacing. Anything
# else stays a number and fails the text column, so its message goes the exact way.
_NUMERIC_ID = r'"(tenant_id|user_id|tenantId|userId)":(-?[1-9]\d{0,17}|0)([,}])'
CHUNK = 5000  # messages per Arrow parse (a worker batch): one unparseable message costs a re-parse of its chunk
# A chunk is parsed on the calling thread, in one block. Arrow's threads halve the parse's wall time on an idle
# machine but cost more CPU, and a busy worker has no core to spare: on 300,000 events end to end through worker,
# broker and api on 2 cores, one thread carried 59k events/s against 48k (bench/calls.py, 6 paired rounds).
_RETRIES = 8  # parse errors that name a row drop that message and parse again; past this the chunk goes exact
_ROW_ERROR = re.compile(r"in row (\d+)")
_MAX_DEPTH_BYTES = 2000  # orjson refuses nesting past 1024 levels; Arrow does not; that takes 2 KiB of brackets
# ISO 8601 as datetime.fromisoformat and Arrow's cast both read it, to the microsecond; the rest goes exact.
_ISO = (r"^(?:19|2\d)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[T ](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
        r"(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?$")
# A query string can only change under redaction if it holds a trigger word of a sensitive key, or needs
# unquoting or Unicode lower-casing to do so; the others are left as they are without a Python call.
_MAY_REDACT = "(?i)" + "|".join(re.escape(k) for k in sorted(TRIGGERS)) + r"|%|\+|[^\x00-\x7f]"
_NULL_TEXT = pa.scalar(None, pa.string())
_KONG_KEYS = ("request", "response", "latencies", "started_at", "client_ip", "consumer")
_EPOCH_MS_THRESHOLD = 100_000_000_000  # normalize.py: numbers at or above are epoch milliseconds
_MAX_MS = 253402300800 * 1000  # year 10000



class Normalized(NamedTuple):
    """A batch's records (CALLS_SCHEMA, message order), its dead letters, and where each record came from."""

    table: pa.Table
    dead: list[DeadLetter]
    seqs: pa.Array  # int64 source_seq per record: offset << SEQ_BITS | rank among its message's records
    supplied: pa.Array  # bool per record: the producer gave its id (else it is derived from the coordinates)


def normalize_batch(topic: str, batch: Batch, make_id: IdFn) -> Normalized:
    """One partition's messages -> records as a CALLS_SCHEMA table (in message order) and dead letters."""
    return normalize_batches(topic, [batch], make_id)[0]


def normalize_batches(topic: str, batches: list[Batch], make_id: IdFn) -> list[Normalized]:
    """Several partitions' messages, each partition's records and dead letters apart (as `normalize_batch` makes
    them), parsed and checked together: a fetch spreads over partitions, and a parse has a fixed cost (~3 ms)
    that a fetch's few thousand messages pay once instead of once per partition."""
    joined = _Joined.of(batches)
    objects: list[int] = []
    arrays: list[int] = []
    for i, v in enumerate(joined.values):
        if v is not None and len(v) <= MAX_VALUE_BYTES:
            if v.startswith(b"{"):
                objects.append(i)
            elif v.startswith(b"["):
                arrays.append(i)
    tables: list[pa.Table] = []
    positions: list[int] = []
    supplied: list[pa.Array] = []
    chunks = (_fast_or_none(joined, objects[start:start + CHUNK], make_id) for start in range(0, len(objects), CHUNK))
    for got in chain(chunks, _fast_arrays(joined, arrays, make_id)):
        if got is not None:
            tables.append(got[0])
            positions += got[1]
            supplied.append(got[2])
    fast = pa.concat_tables(tables) if tables else CALLS_SCHEMA.empty_table()
    flags = pa.concat_arrays(supplied) if supplied else pa.array([], pa.bool_())
    pos = np.asarray(positions, dtype=np.int64)
    if arrays and len(pos) > 1 and (pos[1:] < pos[:-1]).any():  # arrays' rows after the objects': message order
        order = np.argsort(pos, kind="stable")  # stable: an array's elements keep theirs
        fast, flags, pos = fast.take(order), flags.take(order), pos[order]
        positions = pos.tolist()
    # Positions ascend (message order), so each partition's rows are one slice.
    cuts = np.searchsorted(pos, joined.bounds).tolist()
    return [_with_exact(topic, batch, fast.slice(lo, hi - lo), [p - first for p in positions[lo:hi]],
                        flags.slice(lo, hi - lo), make_id)
            for batch, first, lo, hi in zip(batches, joined.bounds, cuts, cuts[1:], strict=False)]


def _fast_or_none(batch: _Joined, pos: list[int], make_id: IdFn) -> tuple[pa.Table, list[int], pa.Array] | None:
    try:
        return _fast_chunk(batch, pos, make_id)
    except pa.ArrowException:
        # The fast path is only a shortcut: whatever Arrow cannot handle (`{"": [null, null]}` made
        # combine_chunks fail) goes the exact way, message by message, rather than stopping the stream.
        return None


def _fast_arrays(joined: _Joined, arrays: list[int],
                 make_id: IdFn) -> Iterator[tuple[pa.Table, list[int], pa.Array]]:
    """Messages that are arrays of events (what the api publishes: a POSTed batch, an OTLP export), read on the
    fast path too: each element is re-serialized by orjson, which reads the message as the exact path does, and
    checked like an object message; a message is kept whole or not at all (a bad element, or an element that is
    not an object, sends it the exact way, which words its dead letters). Rows: the message's position, once
    per element, in element order; derived ids carry the element's index, as the exact path's do."""
    lines: list[bytes] = []
    owners: list[int] = []
    indexes: list[int] = []
    counts: dict[int, int] = {}

    def flush() -> Iterator[tuple[pa.Table, list[int], pa.Array]]:
        elements = _Joined(lines, [joined.offsets[i] for i in owners], [joined.timestamps_ms[i] for i in owners],
                           [joined.partitions[i] for i in owners], [0, len(lines)], indexes)
        got = _fast_or_none(elements, list(range(len(lines))), make_id)
        if got is None:
            return
        table, rows, supplied = got
        owner = np.asarray(owners, dtype=np.int64)[np.asarray(rows, dtype=np.int64)]
        found = np.unique(owner, return_counts=True)
        whole = {int(i) for i, n in zip(*found, strict=True) if counts[int(i)] == n}
        if len(whole) != len(found[0]):
            keep = np.isin(owner, list(whole))
            table, supplied, owner = table.filter(pa.array(keep)), supplied.filter(pa.array(keep)), owner[keep]
        if table.num_rows:
            yield table, owner.tolist(), supplied

    for i in arrays:
        try:
            elements = orjson.loads(joined.values[i])
        except orjson.JSONDecodeError:
            continue
        if not elements or not all(type(e) is dict for e in elements):
            continue
        lines += [orjson.dumps(e) for e in elements]
        owners += [i] * len(elements)
        indexes += range(len(elements))
        counts[i] = len(elements)
        if len(lines) >= CHUNK:  # whole messages per parse: a message is judged with all its elements
            yield from flush()
            lines, owners, indexes, counts = [], [], [], {}
    if lines:
        yield from flush()


class _Joined(NamedTuple):
    """Several partitions' messages as one list, each message's partition beside it; `bounds`: where each
    partition's messages start, and the end; `indexes`: for the elements of array messages, each one's index
    in its message (derived ids carry it)."""

    values: list[bytes | None]
    offsets: list[int]
    timestamps_ms: list[int]
    partitions: list[int]
    bounds: list[int]
    indexes: list[int] | None = None

    @classmethod
    def of(cls, batches: list[Batch]) -> _Joined:
        if len(batches) == 1:
            b = batches[0]
            return cls(b.values, b.offsets, b.timestamps_ms, [b.partition] * len(b.values), [0, len(b.values)])
        return cls([v for b in batches for v in b.values], [o for b in batches for o in b.offsets],
                   [t for b in batches for t in b.timestamps_ms],
                   [b.partition for b in batches for _ in b.values],
                   np.cumsum([0] + [len(b.values) for b in batches]).tolist())


def _with_exact(topic: str, batch: Batch, fast: pa.Table, positions: list[int], supplied: pa.Array,
                make_id: IdFn) -> Normalized:
    """One partition's fast-path rows, with the exact path's over the rest of its messages, in message order."""
    rest = [] if len(positions) == len(batch.values) else sorted(set(range(len(batch.values))) - set(positions))
    exact, exact_pos, exact_supplied, dead = _exact(topic, batch, rest, make_id)
    tables = [t for t in (fast, exact) if t.num_rows]
    if not tables:
        return Normalized(CALLS_SCHEMA.empty_table(), dead, pa.array([], pa.int64()), pa.array([], pa.bool_()))
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    flags = pa.concat_arrays([f for f in (supplied, exact_supplied) if len(f)])
    pos = np.asarray(positions + exact_pos, dtype=np.int64)
    if exact.num_rows and positions:  # back into message order; stable, so a batch's elements keep theirs
        order = np.argsort(pos, kind="stable")
        table, flags, pos = table.take(order), flags.take(order), pos[order]
    return Normalized(table, dead, _source_seqs(batch, pos), flags)


def _source_seqs(batch: Batch, pos: np.ndarray) -> pa.Array:
    """Each record's source_seq from its message position (sorted): the offset, and its rank in the message."""
    offsets = np.asarray(batch.offsets, dtype=np.int64)[pos]
    rank = np.zeros(len(pos), dtype=np.int64)
    if len(pos) > 1 and (repeats := pos[1:] == pos[:-1]).any():  # messages that held several records
        starts = np.flatnonzero(np.concatenate(([True], ~repeats)))
        rank = np.arange(len(pos)) - np.repeat(starts, np.diff(np.append(starts, len(pos))))
    return pa.array((offsets << SEQ_BITS) | rank, pa.int64())


def _exact(topic: str, batch: Batch, rest: list[int],
           make_id: IdFn) -> tuple[pa.Table, list[int], pa.Array, list[DeadLetter]]:
    """The exact per-event path over the messages at `rest`; each record's position and id origin come with it."""
    records: list[dict] = []
    positions: list[int] = []
    supplied: list[bool] = []
    dead: list[DeadLetter] = []
    for i in rest:
        made: set[str] = set()

        def derive(partition: int, offset: int, index: int | None, made: set[str] = made) -> str:
            made.add(id_ := make_id(partition, offset, index))
            return id_

        message = Message(batch.partition, batch.offsets[i], batch.timestamps_ms[i], batch.values[i])
        recs, letters = normalize_messages(topic, (message,), derive)
        records += recs
        positions += [i] * len(recs)
        supplied += [r["api_call_history_id"] not in made for r in recs]
        dead += letters
    return (pa.Table.from_pylist(records, schema=CALLS_SCHEMA), positions, pa.array(supplied, pa.bool_()),
            dead)


def _fast_chunk(batch: _Joined, pos: list[int], make_id: IdFn) -> tuple[pa.Table, list[int], pa.Array] | None:
    """The rows of these messages the fast path proves valid, their positions and whether their ids were given;
    None if it cannot parse."""
    raw, pos = _parse(batch, pos)
    if raw is None:
        return None
    stamps = batch.timestamps_ms
    ok, cols = _checked_columns(raw, pa.array([stamps[i] for i in pos], pa.int64()))
    if not pc.all(ok).as_py():
        cols = [pc.filter(c, ok) for c in cols]
        pos = [p for p, good in zip(pos, ok.to_pylist(), strict=True) if good]
    missing = pc.is_null(cols[0])
    supplied = pc.invert(missing)
    if pc.any(missing).as_py():
        at = [pos[j] for j in pc.indices_nonzero(missing).to_pylist()]
        cols[0] = pc.replace_with_mask(cols[0], missing, pa.array(_derived_ids(batch, at, make_id), pa.string()))
    return pa.Table.from_arrays(cols, schema=CALLS_SCHEMA), pos, supplied


def _derived_ids(batch: _Joined, at: list[int], make_id: IdFn) -> list[str]:
    """The ids of the messages at `at` (ascending) from their coordinates, a partition's run at once if it can."""
    if batch.indexes is not None:  # array elements: the index is part of the id, as on the exact path
        return [make_id(batch.partitions[i], batch.offsets[i], batch.indexes[i]) for i in at]
    many = getattr(make_id, "many", None)
    if many is None:
        return [make_id(batch.partitions[i], batch.offsets[i], None) for i in at]
    out: list[str] = []
    for partition, run in groupby(at, key=batch.partitions.__getitem__):
        out += many(partition, [batch.offsets[i] for i in run])
    return out


def _parse(batch: _Joined, pos: list[int]) -> tuple[pa.Table | None, list[int]]:
    """Arrow's JSON reader, one object per line; messages it cannot read as orjson would are left out."""
    values, pos, data = _readable([batch.values[i] for i in pos], pos)
    options = _PARSE
    if values and b'"started_at"' in values[0] and b'"request"' in values[0]:
        values, pos, data = _kong_screens(values, pos, data)
        options = _PARSE_KONG
    for _ in range(_RETRIES + 1):
        if not values:
            return None, pos
        data = data or b"\n".join(values)  # joined once, and again only after messages were dropped or quoted
        read = pj.ReadOptions(use_threads=False, block_size=len(data) + 1)
        try:
            table = pj.read_json(io.BytesIO(data), parse_options=options, read_options=read)
        except pa.ArrowInvalid as exc:
            if options is _PARSE_KONG_MIXED and _MIXED_IDS.search(str(exc)):
                options = _PARSE  # numeric ids beside Kong's objects: let Arrow infer them
                continue
            if options is _PARSE and _MIXED_IDS.search(str(exc)):
                values, options, data = _quote_numeric_ids(values), _PARSE_QUOTED, b""
                continue
            m = _ROW_ERROR.search(str(exc))
            if m is None and options in (_PARSE_KONG, _PARSE_KONG_MIXED):
                options = _PARSE  # a conversion Arrow cannot place in a row: read the chunk as before
                continue
            if m is None or int(m.group(1)) >= len(values):
                return None, pos
            del values[int(m.group(1))], pos[int(m.group(1))]
            data = b""
            continue
        # One row per message, or some message held more than one document (orjson rejects those).
        if table.num_rows != len(values) or _nonfinite(table):
            return None, pos
        if options is _PARSE_KONG and not _all_kong(table):
            options = _PARSE_KONG_MIXED  # other events too: read their fields as well
            continue
        text = _ids_as_text(table)
        if text is None and options is _PARSE:
            # An id that is a fraction, a boolean or past 64 bits: quote the integers and read the ids as text,
            # so only the messages holding such an id fail (and go the exact way), not the whole chunk.
            values, options, data = _quote_numeric_ids(values), _PARSE_QUOTED, b""
            continue
        kong_chunk = options in (_PARSE_KONG, _PARSE_KONG_MIXED)
        return (None if text is None else _raw_columns(text, values, data, kong_chunk)), pos
    return None, pos


def _readable(values: list[bytes], pos: list[int]) -> tuple[list[bytes], list[int], bytes]:
    """The messages orjson can read at all: UTF-8, and nested less than its 1024 levels, with their bytes joined
    one per line. Each message is looked at only for what the chunk's check cannot vouch for: UTF-8 if the chunk
    failed, nesting if it is long enough to hold that many brackets."""
    data = b"\n".join(values)
    valid = _utf8(data)
    long = np.flatnonzero(np.fromiter(map(len, values), np.int64, len(values)) >= _MAX_DEPTH_BYTES)
    deep = {j for j in long.tolist() if values[j].count(b"{") + values[j].count(b"[") >= 1000}
    if valid and not deep:
        return values, pos, data
    keep = [j for j, v in enumerate(values) if j not in deep and (valid or _utf8(v))]
    values = [values[j] for j in keep]
    return values, [pos[j] for j in keep], b"\n".join(values)


def _raw_columns(text: pa.Table, values: list[bytes], data: bytes, kong_chunk: bool) -> pa.Table:
    """The columns the checks read: the raw schema's, Kong's fields (`_from_kong`) and, for a Kong chunk, whether
    each row's parsed query may hold anything (`data`: the rows' messages joined one per line)."""
    kong = [n for n in _KONG_KEYS if n in text.schema.names]
    for field in RAW_SCHEMA:  # a chunk of Kong's events only declares none of them
        if field.name not in text.schema.names:
            text = text.append_column(field, pa.nulls(text.num_rows, field.type))
    text = text.select(RAW_SCHEMA.names + kong)
    if kong_chunk:
        text = text.append_column(_QS_GIVEN, _querystring_given(text, values, data))
    return text.combine_chunks()


def _all_kong(table: pa.Table) -> bool:
    """Every row has Kong's `request` and `response` objects (formats.detect)."""
    return all(table.column(name).null_count == 0 for name in ("request", "response"))


def _quote_numeric_ids(values: list[bytes]) -> list[bytes]:
    quoted = pc.replace_substring_regex(pa.array(values, pa.binary()), _NUMERIC_ID, r'"\1":"\2"\3')
    return quoted.to_pylist()


def _variant_pattern(names: frozenset[str]) -> str:
    """A JSON key that is one of `names` with at least one letter upper-cased (RE2 has no look-ahead)."""
    alternatives = []
    for name in sorted(names):
        for i, ch in enumerate(name):
            if ch.isalpha():
                alternatives.append(re.escape(name[:i]) + ch.upper() + "(?i:" + re.escape(name[i + 1:]) + ")")
    return '"(?:' + "|".join(alternatives) + ')"'


_HEADER_VARIANT = _variant_pattern(KEPT_HEADERS)
_QS_KEY = b'"querystring"'
_NONE = np.empty(0, np.int64)
_SCAN_BLOCK = 1 << 19  # bytes: measured best of 16 KiB..8 MiB on this machine's caches


def _kong_screens(values: list[bytes], pos: list[int], data: bytes) -> tuple[list[bytes], list[int], bytes]:
    """Messages of a Kong chunk whose ignored fields hold what the rules care about are left out (the exact path
    reads them): a NaN/Infinity literal (inside strings too: only the shortcut is lost), an escape that may spell
    a key, or a read header named in another case. Each check scans the chunk once; only a hit is placed."""
    drop: set[int] = set()
    # An escaped key may spell a read header in any case (orjson and Arrow decode it first); one memchr rules
    # most chunks out.
    hits = _nonfinite_at(data, escapes=b"\\" in data)
    if len(hits):
        drop |= set(_messages_at(values, hits).tolist())
    if pc.any(pc.match_substring_regex(pa.array([data], pa.binary()), _HEADER_VARIANT)).as_py():
        hits = pc.match_substring_regex(pa.array(values, pa.binary()), _HEADER_VARIANT).to_pylist()
        drop |= {j for j, hit in enumerate(hits) if hit}
    if not drop:
        return values, pos, data
    values = [v for j, v in enumerate(values) if j not in drop]
    return values, [p for j, p in enumerate(pos) if j not in drop], b"\n".join(values)


def _messages_at(values: list[bytes], at: np.ndarray) -> np.ndarray:
    """Which message (of `values`, joined one per line) holds each byte offset."""
    starts = np.cumsum([0] + [len(v) + 1 for v in values[:-1]])
    return np.searchsorted(starts, at, side="right") - 1


def _querystring_given(table: pa.Table, values: list[bytes], data: bytes) -> pa.Array:
    """Per row, whether Kong's parsed `querystring` may hold anything: unless the row's message holds the key
    once, as `"querystring":{}` (a space in it only costs the shortcut). Only rows whose uri holds no `?` need
    to know: their query is read from it."""
    uri = pc.struct_field(table.column("request").combine_chunks(), "uri")
    plain = np.asarray(pc.invert(pc.fill_null(pc.match_substring(uri, "?"), False)))
    if not plain.any():
        return pa.array(np.zeros(len(plain), dtype=bool))
    buf = np.frombuffer(data, np.uint8)
    (at,) = _occurrences(buf, _QS_KEY)
    row = _messages_at(values, at)
    keys = np.bincount(row, minlength=len(plain))
    empty = np.zeros(len(plain), dtype=bool)
    empty[row[_followed_by(buf, at + len(_QS_KEY), b":{}")]] = True
    return pa.array(plain & ((keys != 1) | ~empty))


def _occurrences(buf: np.ndarray, *needles: bytes) -> list[np.ndarray]:
    """Start offsets of every occurrence of each needle (two bytes or more) in `buf`, in order. Their first two
    bytes are compared as 16-bit words at both alignments, one compare per two bytes, and the rest at the few
    places they match. The buffer is walked in blocks that stay in cache, every needle per block: for three
    needles over a chunk of Kong's events, 1.1 against 2.5 us an event unblocked, and ~6 with `bytes.count`."""
    words = [int.from_bytes(needle[:2], "little") for needle in needles]
    found: list[list[np.ndarray]] = [[] for _ in needles]
    for lo in range(0, len(buf) - 1, _SCAN_BLOCK):
        block = buf[lo:lo + _SCAN_BLOCK + 1]  # one byte more: a pair may straddle the blocks' edge
        for start in (0, 1):
            pairs = block[start:start + 2 * ((len(block) - start) // 2)].view("<u2")
            for i, word in enumerate(words):
                same = pairs == word
                if same.any():  # most blocks hold none: flatnonzero costs twice the compare
                    found[i].append(np.flatnonzero(same) * 2 + (lo + start))
    out = []
    for needle, hits in zip(needles, found, strict=True):
        at = np.unique(np.concatenate(hits)) if hits else _NONE  # a straddling pair is found twice
        out.append(at[_followed_by(buf, at + 2, needle[2:])])
    return out


def _followed_by(buf: np.ndarray, at: np.ndarray, tail: bytes) -> np.ndarray:
    """Whether `tail` starts at each offset of `at` (False where it would run past the end)."""
    ok = at + len(tail) <= len(buf)
    for k, ch in enumerate(tail):
        ok &= buf[np.minimum(at + k, len(buf) - 1)] == ch
    return ok


def _nonfinite_at(data: bytes, escapes: bool = False) -> np.ndarray:
    """Byte offsets of every `NaN`, `Inf` and `Infinity` in the bytes: the literals Arrow's reader takes and orjson
    refuses. "Info" or "Infra" (common in headers) are not: a letter after `Inf` that does not spell `Infinity`.
    With `escapes`, those of every `\\u` escape too, found in the same pass."""
    buf = np.frombuffer(data, np.uint8)
    nan, inf, *escaped = _occurrences(buf, b"NaN", b"Inf", *([b"\\u"] if escapes else []))
    after = buf[np.minimum(inf + 3, len(buf) - 1)] | 0x20  # lower-cased; past the end reads as no letter
    letter = (inf + 3 < len(buf)) & (after >= ord("a")) & (after <= ord("z"))
    return np.sort(np.concatenate((nan, inf[~letter | _followed_by(buf, inf, b"Infinity")], *escaped)))


def _ids_as_text(table: pa.Table) -> pa.Table | None:
    """Tenant and user ids as text, as `_ident` stores them; None if a chunk holds ids it cannot say so for."""
    for name in _IDS:
        if name not in table.schema.names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
            continue
        kind = table.schema.field(name).type
        if kind == pa.string():
            continue
        if not (pa.types.is_int64(kind) or pa.types.is_null(kind)):
            return None  # fractions, booleans, arrays: only the exact path words their dead letters
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.cast(table.column(i), pa.string()))
    return table


def _utf8(data: bytes) -> bool:
    """What orjson demands of its input, checked by Arrow's UTF-8 validation (no str is built)."""
    if data.isascii():
        return True
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)]).cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _nonfinite(table: pa.Table) -> bool:
    """A NaN or Inf anywhere in the fields we do not read (in those we read, Arrow refuses them)."""
    return any(_has_nonfinite(table.column(name).combine_chunks())
               for name in table.schema.names if name not in RAW_SCHEMA.names or name in _IDS)


def _has_nonfinite(values: pa.Array) -> bool:
    kind = values.type
    if pa.types.is_floating(kind):
        return bool(pc.any(pc.or_(pc.is_nan(values), pc.is_inf(values))).as_py())
    if pa.types.is_struct(kind):
        return any(_has_nonfinite(values.field(i)) for i in range(kind.num_fields))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _has_nonfinite(values.flatten())
    return False


def _checked_columns(raw: pa.Table, stamps_ms: pa.Array) -> tuple[pa.Array, list[pa.Array]]:
    """(rows valid by every rule, the CALLS_SCHEMA columns over all rows); rejected rows hold anything."""
    col = {name: raw.column(name).chunk(0) for name in raw.schema.names}
    kong = _kong_rows(col)
    ok, started = _as_native(col, pc.invert(kong)), None
    if pc.any(kong).as_py():
        kong_ok, started = _from_kong(col, kong)
        ok = pc.if_else(kong, kong_ok, ok)
    for name in _TEXT:
        col[name] = _blank_to_null(col[name])
    status, method, path = col["status_code"], col["method"], col["path"]
    headers = pc.and_(pc.is_null(col["request_headers"]), pc.is_null(col["response_headers"]))
    ok = pc.and_(ok, headers if started is None else pc.or_(kong, headers))  # Kong's: only what _from_kong read
    ok = pc.and_(ok, pc.fill_null(pc.match_substring_regex(method, r"^[A-Za-z]{1,16}$"), False))
    ok = pc.and_(ok, pc.fill_null(pc.starts_with(path, "/"), False))
    ok = pc.and_(ok, pc.fill_null(pc.and_(pc.greater_equal(status, 100), pc.less_equal(status, 599)), False))
    for name in _INTS:
        ok = pc.and_(ok, pc.fill_null(pc.greater_equal(col[name], 0), True))
    ok = pc.and_(ok, pc.fill_null(pc.less_equal(pc.utf8_length(col["agent_id"]), MAX_AGENT_ID), True))
    ip = _mapped(col["ip_address"], canonical_ip)
    ok = pc.and_(ok, pc.or_(pc.is_null(col["ip_address"]), pc.is_valid(ip)))
    created, created_ok = _created_at(col["created_at"], stamps_ms)
    if started is not None:  # Kong's started_at, epoch ms (checked in _from_kong)
        created = pc.if_else(kong, pc.cast(pc.multiply(started, 1000), created.type), created)
        created_ok = pc.or_(kong, created_ok)
    ok = pc.fill_null(pc.and_(ok, created_ok), False)  # a check that came out null vouches for nothing
    path, query = _path_and_query(path, col["query_string"])
    col |= {"method": pc.ascii_upper(method), "path": path, "query_string": query, "ip_address": ip,
            "status_code": pc.cast(pc.if_else(ok, status, 200), pa.int32()), "created_at": created}
    return ok, [col[f.name] for f in CALLS_SCHEMA]


def _kong_rows(col: dict[str, pa.Array]) -> pa.Array:
    """Rows that are Kong log objects (`request` and `response` objects: formats.detect), read exactly."""
    req, resp = col.get("request"), col.get("response")
    if req is None or resp is None or not (pa.types.is_struct(req.type) and pa.types.is_struct(resp.type)):
        return pa.array(np.zeros(len(col["method"]), dtype=bool))
    return pc.and_(pc.is_valid(req), pc.is_valid(resp))


class _Unreadable(Exception):
    """A Kong field of a type the vectorised reading does not take: the chunk's Kong rows go exact."""


def _sub(value: pa.Array | None, *path: str) -> pa.Array | None:
    """A nested field (None if any level is absent); every level but the last must be a struct."""
    for name in path:
        if value is None:
            return None
        if not pa.types.is_struct(value.type):
            raise _Unreadable(name)
        i = value.type.get_field_index(name)
        if i < 0:
            return None
        value = pc.struct_field(value, [i])
    return value


def _typed(value: pa.Array | None, n: int, kind: pa.DataType) -> pa.Array:
    """A Kong field as `kind` (nulls where absent); a field of another type cannot be read vectorised."""
    if value is None or pa.types.is_null(value.type):
        return pa.nulls(n, kind)
    if kind == pa.string() and pa.types.is_string(value.type):
        return value
    if pa.types.is_integer(kind) and pa.types.is_integer(value.type):
        return pc.cast(value, kind)
    raise _Unreadable(str(value.type))


def _from_kong(col: dict[str, pa.Array], kong: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Kong rows into the native columns, as formats.from_kong and normalize_event read them: (rows read
    exactly so, started_at in ms). Anything it does not cover (a consumer, a parsed query without `?` in the
    uri, a size or time missing, a traceparent it cannot vouch for) is not ok: the exact path reads it."""
    n = len(kong)
    req, resp = col["request"], col["response"]
    try:
        headers = _sub(req, "headers")
        names = set() if headers is None else {f.name for f in headers.type}
        # A header the rules read, named in another case: the exact path lower-cases it; those rows go there.
        cased = [_sub(headers, name) for name in names if name.lower() in KEPT_HEADERS and name not in KEPT_HEADERS]
        h = {name: _blank_to_null(_typed(_sub(headers, name), n, pa.string())) for name in KEPT_HEADERS}
        uri = _typed(_sub(req, "uri"), n, pa.string())
        query_fields = _sub(req, "querystring")
        size_in = _typed(_sub(req, "size"), n, pa.int64())
        size_out = _typed(_sub(resp, "size"), n, pa.int64())
        latency = _typed(_sub(col.get("latencies"), "request"), n, pa.int64())
        started = _typed(col.get("started_at"), n, pa.int64())
        values = {
            "api_call_history_id": _typed(_sub(req, "id"), n, pa.string()),
            "method": _typed(_sub(req, "method"), n, pa.string()),
            "status_code": _typed(_sub(resp, "status"), n, pa.int64()),
            "ip_address": _typed(col.get("client_ip"), n, pa.string()),
        }
    except (_Unreadable, pa.ArrowException):
        return pa.array(np.zeros(n, dtype=bool)), pa.nulls(n, pa.int64())
    ok = pc.and_(pc.is_valid(uri), pc.and_(pc.is_valid(size_in), pc.is_valid(size_out)))
    for value in cased:
        ok = pc.and_(ok, pc.is_null(value))
    ok = pc.and_(ok, pc.fill_null(pc.greater_equal(started, _EPOCH_MS_THRESHOLD), False))
    ok = pc.and_(ok, pc.fill_null(pc.less(started, _MAX_MS), False))
    if "consumer" in col:
        ok = pc.and_(ok, pc.is_null(col["consumer"]))
    if "latencies" in col and not pa.types.is_struct(col["latencies"].type):
        ok = pa.array(np.zeros(n, dtype=bool))
    given = col.get(_QS_GIVEN)  # a Kong chunk's parsed query, seen on the bytes (_kong_screens)
    if given is None and query_fields is not None and query_fields.type.num_fields:
        given = pa.array(np.zeros(n, dtype=bool))
        for i in range(query_fields.type.num_fields):
            given = pc.or_(given, pc.is_valid(pc.struct_field(query_fields, [i])))
    if given is not None:  # Kong's parsed query: read exactly, unless the uri holds it or it is empty
        ok = pc.and_(ok, pc.or_(pc.fill_null(pc.match_substring(uri, "?"), False), pc.invert(given)))
    parent = h["traceparent"]
    trace = pc.extract_regex(parent, r"^\s*[^-]*-(?P<t>[0-9a-fA-F]{32})-[^-]*-")
    trace = pc.utf8_lower(pc.struct_field(trace, [0]))
    vouched = pc.fill_null(pc.and_(pc.is_valid(trace), pc.not_equal(trace, "0" * 32)), False)
    ok = pc.and_(ok, pc.or_(pc.is_null(parent), vouched))  # no traceparent is fine; a null must never pass
    values |= {
        "tenant_id": h["x-tenant-id"], "user_id": h["x-user-id"], "agent_id": h["x-agent-id"],
        "path": uri, "query_string": pa.nulls(n, pa.string()), "latency_ms": latency,
        "request_size_bytes": size_in, "response_size_bytes": size_out, "user_agent": h["user-agent"],
        "trace_id": pc.coalesce(trace, h["x-trace-id"], h["x-b3-traceid"], h["x-request-id"]),
        "error_code": pa.nulls(n, pa.string()), "source": h["x-dwp-source"],
    }
    for name, value in values.items():
        col[name] = pc.if_else(kong, pc.cast(value, col[name].type), col[name])
    return ok, started


def _as_native(col: dict[str, pa.Array], candidates: pa.Array) -> pa.Array:
    """Seed-DTO rows (a DTO mark not null: formats.detect) take their camelCase values into the native columns;
    a row giving a field in both spellings is not ok (formats.from_seed_dto refuses it). Returns that ok.
    Only `candidates` may be DTO rows (Kong's are told apart first)."""
    n = len(col["method"])
    dto = pc.or_(pc.or_(pc.is_valid(col["statusCode"]), pc.is_valid(col["tenantId"])), pc.is_valid(col["latencyMs"]))
    dto = pc.and_(dto, candidates)
    if not pc.any(dto).as_py():
        return pa.array(np.ones(n, dtype=bool))
    ok = pa.array(np.ones(n, dtype=bool))
    for camel, snake in CAMEL.items():
        given = col[camel]
        if not given.null_count < n:
            continue
        if pa.types.is_struct(given.type):  # header maps: such rows are read exactly
            ok = pc.and_(ok, pc.invert(pc.and_(dto, pc.is_valid(given))))
            continue
        ok = pc.and_(ok, pc.invert(pc.and_(dto, pc.and_(pc.is_valid(col[snake]), pc.is_valid(given)))))
        col[snake] = pc.if_else(dto, pc.coalesce(col[snake], given), col[snake])
    return ok


def _blank_to_null(values: pa.Array) -> pa.Array:
    blank = pc.equal(values, "")
    return pc.if_else(blank, _NULL_TEXT, values) if pc.any(blank).as_py() else values


def _mapped(values: pa.Array, fn: Callable[[str], str | None], where: pa.Array | None = None) -> pa.Array:
    """fn over the distinct values only (they repeat), spread back; only `where` true if given; None stays."""
    subset = values if where is None else pc.filter(values, where)
    distinct = pc.unique(subset).drop_null()
    if not len(distinct):
        return values
    mapped = pc.take(pa.array([fn(v) for v in distinct.to_pylist()], pa.string()), pc.index_in(values, distinct))
    return mapped if where is None else pc.if_else(where, mapped, values)


def _created_at(values: pa.Array, stamps_ms: pa.Array) -> tuple[pa.Array, pa.Array]:
    """UTC microseconds (a missing time is the Kafka timestamp, a naive one UTC); ok only where that is certain."""
    iso = pc.match_substring_regex(values, _ISO)
    ok = pc.fill_null(iso, True)
    text = pc.if_else(iso, values, _NULL_TEXT)
    zoned = pc.or_(pc.ends_with(text, "Z"), pc.match_substring_regex(text, r"[+-]\d\d:\d\d$"))
    text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, "Z", ""))
    try:
        parsed = pc.cast(pc.cast(text, pa.timestamp("us", tz="UTC")), pa.int64())
    except pa.ArrowInvalid:  # an impossible date such as Feb 30: every string timestamp here goes exact
        parsed = pa.nulls(len(values), pa.int64())
        ok = pc.is_null(values)
    micros = pc.if_else(pc.is_null(values), pc.multiply(stamps_ms, 1000), parsed)
    return pc.cast(micros, CALLS_SCHEMA.field("created_at").type), ok


def _path_and_query(path: pa.Array, query: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Split `?query` off the path; an explicit query_string wins; one leading '?' dropped; '' is NULL."""
    if pc.any(pc.match_substring(path, "?")).as_py():
        parts = pc.extract_regex(path, r"(?s)^(?P<p>[^?]*)(?:\?(?P<q>.*))?$")
        path = pc.if_else(pc.is_valid(parts), pc.struct_field(parts, "p"), path)
        query = pc.coalesce(query, pc.struct_field(parts, "q"))
    query = pc.if_else(pc.fill_null(pc.starts_with(query, "?"), False), pc.utf8_slice_codeunits(query, 1), query)
    query = _blank_to_null(query)
    return path, _mapped(query, redact_cached, pc.fill_null(pc.match_substring_regex(query, _MAY_REDACT), False))
