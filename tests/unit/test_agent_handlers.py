"""The agents' handlers (predictions, tickets), imported and run alone: no worker, no broker, topics that record."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pipeline.broker.records import Message
from pipeline.predictions.agents import debate_round, start_debate, validate_sleep_message
from pipeline.predictions.features import build_snapshot, completeness
from schemas.predictions import PredictionEvent, PredictionRequest, RoundMessage
from simulators.sleep_cohort import generate_cohort

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Recorded:
    """A topic that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []

    async def send(self, *, key: bytes | None = None, value: bytes) -> Any:
        self.sent.append((key, value))


def _request(deadline: datetime = T0 + timedelta(seconds=30)) -> PredictionRequest:
    user = generate_cohort(1, seed=12)[0]
    snapshot = build_snapshot("t1", user.user_id, [r.model_copy(update={"tenant": "t1"}) for r in user.records])
    return PredictionRequest(prediction_id="pred_1", session_id="debate_1", tenant="t1", user_id=user.user_id,
                             trigger_type="MANUAL_REQUEST", requested_at=T0, deadline=deadline,
                             snapshot=snapshot, completeness=completeness(snapshot), priority="NORMAL",
                             requested_by="u")


def test_a_request_runs_round_by_round_through_the_handlers_to_one_completion():
    rounds, results = Recorded(), Recorded()
    asyncio.run(start_debate(_request(), rounds))
    handled = 0
    while handled < len(rounds.sent):  # each round message the handler sent is the next one it handles
        key, value = rounds.sent[handled]
        assert key == b"debate_1"  # one session's rounds stay on one partition, in order
        asyncio.run(debate_round(RoundMessage.model_validate_json(value), rounds, results, now=lambda: T0))
        handled += 1
    events = [PredictionEvent.model_validate_json(v) for _, v in results.sent]
    assert {k for k, _ in results.sent} == {b"pred_1"}
    assert [e.kind for e in events].count("completed") == 1 and events[-1].kind == "completed"
    assert [e.round.round_number for e in events if e.kind == "round"] == list(range(1, handled + 1))
    assert handled >= 2 and events[-1].outcome.interval_low < events[-1].outcome.sol_score


def test_a_round_past_its_deadline_fails_with_p002_and_sends_no_next_round():
    rounds, results = Recorded(), Recorded()
    msg = RoundMessage(request=_request(deadline=T0 - timedelta(seconds=1)), transcript=[])
    asyncio.run(debate_round(msg, rounds, results, now=lambda: T0))
    (event,) = [PredictionEvent.model_validate_json(v) for _, v in results.sent]
    assert event.kind == "failed" and event.error_code == "COD_P002"
    assert rounds.sent == []


def test_a_sleep_message_sends_its_valid_records_and_dead_letters_the_rest():
    out, letters = Recorded(), []

    async def dead_letter(letter: Any) -> None:
        letters.append(letter)

    good = {"tenant": "t1", "user_id": "u1", "kind": "mobile", "date": "2026-12-01",
            "data": {"screen_time_before_bed_minutes": 30}}
    value = orjson.dumps([good, {**good, "kind": "dream"}])
    asyncio.run(validate_sleep_message("sleep.records", Message(2, 40, 0, value), out, dead_letter))
    assert [k for k, _ in out.sent] == [b"t1/u1"]
    (letter,) = letters
    assert (letter.partition, letter.offset, letter.index) == (2, 40, 1) and "kind" in letter.error


def test_a_ticket_message_becomes_one_normalized_message_then_its_jobs_end_mark():
    from pipeline.ingest.marks import mark_headers
    from pipeline.tickets.agents import normalize_ticket_message
    from tests.unit.test_tickets_normalize import env, ticket

    out, letters = Recorded(), []

    async def dead_letter(letter: Any) -> None:
        letters.append(letter)

    value = orjson.dumps([env("ticket", ticket(1001)), env("ticket", {"id": "not a ticket"})])
    asyncio.run(normalize_ticket_message("tickets.raw", Message(0, 7, 0, value), mark_headers("job-1", "wedosoft"),
                                         out, dead_letter))
    (key, first), (mark_key, mark) = out.sent
    tables = orjson.loads(first)["tables"]
    assert [t["source_id"] for t in tables["tickets"]] == ["1001"] and len(tables["integrated_objects"]) == 1
    assert orjson.loads(mark) == {"tables": {}, "marks": [{"job_id": "job-1", "tenant": "wedosoft"}]}
    assert key == mark_key  # the mark follows the rows on the tenant's partition
    assert len(letters) == 1 and (letters[0].offset, letters[0].index) == (7, 1)


def test_normalized_batches_are_embedded_then_their_end_marks_follow_and_odd_messages_are_skipped():
    from pipeline.tickets.embed_agents import embed_normalized

    vectors, embedded = Recorded(), []

    async def embed(objects: list[dict]) -> None:
        embedded.append([o["key"] for o in objects])

    values = [orjson.dumps({"tables": {"integrated_objects": [{"key": "a"}, {"key": "b"}]}}),
              b"not json", orjson.dumps({"tables": {}, "marks": [{"job_id": "j", "tenant": "t1"}]}),
              orjson.dumps({"tables": {"integrated_objects": [{"key": "c"}]}})]
    asyncio.run(embed_normalized(values, embed, vectors))
    assert embedded == [["a", "b", "c"]]  # one embedding call for the batch
    assert vectors.sent == [(b"t1", orjson.dumps({"vectors": [], "marks": [{"job_id": "j", "tenant": "t1"}]}))]
