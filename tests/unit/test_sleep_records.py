"""sleep.records validation at entry: good records become rows, bad ones dead letters with reasons."""

from __future__ import annotations

import base64

import orjson

from pipeline.broker.records import Message
from pipeline.predictions.records import record_key, validate_messages
from schemas.sleep import SleepRecord

DIARY = {"bedtime": "23:10", "lights_off": "23:20", "sol_minutes": 35, "awakenings": 2, "waso_minutes": 20,
         "wake_time": "06:50", "time_in_bed_minutes": 460, "total_sleep_minutes": 405}


def rec(**over: object) -> dict:
    return {"tenant": "t1", "user_id": "u1", "kind": "diary", "date": "2026-11-20", "data": DIARY} | over


def msg(value: bytes | None, offset: int = 0) -> Message:
    return Message(0, offset, 1_764_000_000_000, value)


def test_good_record_becomes_a_row_keyed_by_user_kind_and_night() -> None:
    rows, dead = validate_messages("sleep.records", [msg(orjson.dumps(rec()))])
    assert dead == []
    assert rows[0]["user_id"] == "u1" and rows[0]["kind"] == "diary" and rows[0]["date"] == "2026-11-20"
    assert rows[0]["data"]["sol_minutes"] == 35.0
    # A corrected entry for the same night has the same key (it replaces the old one); another night does not.
    same = SleepRecord.model_validate(rec(data=DIARY | {"sol_minutes": 50}))
    other = SleepRecord.model_validate(rec(date="2026-11-21"))
    assert rows[0]["record_key"] == record_key(same) != record_key(other)


def test_questionnaires_of_one_day_are_kept_apart_by_instrument() -> None:
    isi = SleepRecord.model_validate(rec(kind="questionnaire", data={"instrument": "ISI", "total_score": 12}))
    psqi = SleepRecord.model_validate(rec(kind="questionnaire", data={"instrument": "PSQI", "total_score": 9}))
    assert record_key(isi) != record_key(psqi)


def test_each_kind_of_bad_input_is_a_dead_letter_with_its_reason_and_the_rest_survive() -> None:
    cases = [
        (b"{nope", "not JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b"42", "not a sleep record"),
        (orjson.dumps(rec(kind="sleepytime")), "kind"),
        (orjson.dumps(rec(data=DIARY | {"bedtime": "25:00"})), "bedtime"),
        (orjson.dumps(rec(data=DIARY | {"total_sleep_minutes": 500})), "cannot exceed"),
        (orjson.dumps(rec(kind="questionnaire", data={"instrument": "ISI", "total_score": 40})), "0-28"),
        (orjson.dumps(rec(kind="treatment", data={"phase": "MID", "timezone": "Mars/Olympus"})), "time zone"),
        (orjson.dumps(rec(date="yesterday")), "date"),
        (None, "empty"),
    ]
    messages = [msg(v, i) for i, (v, _) in enumerate(cases)] + [msg(orjson.dumps(rec()), len(cases))]
    rows, dead = validate_messages("sleep.records", messages)
    assert len(rows) == 1 and len(dead) == len(cases)
    for letter, (value, reason) in zip(dead, cases, strict=True):
        assert reason.lower() in letter.error.lower(), (letter.error, reason)
        doc = orjson.loads(letter.to_json())
        assert doc["topic"] == "sleep.records" and doc["offset"] == cases.index((value, reason))
        assert (base64.b64decode(doc["value_b64"]) if doc["value_b64"] else None) == value


def test_a_batch_keeps_its_good_elements_and_names_the_bad_ones_index() -> None:
    batch = [rec(), rec(data={"bedtime": "23:00"}), rec(date="2026-11-21")]
    rows, dead = validate_messages("sleep.records", [msg(orjson.dumps(batch), 7)])
    assert [r["date"] for r in rows] == ["2026-11-20", "2026-11-21"]
    assert len(dead) == 1 and dead[0].index == 1 and dead[0].offset == 7 and "lights_off" in dead[0].error
