"""The round-by-round flow the worker runs: rounds until the final result, timeouts, debates that cannot run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.predictions.debate import MAX_ROUNDS
from pipeline.predictions.features import build_snapshot, completeness
from pipeline.predictions.flow import advance, first_round
from schemas.debate import AgentType
from schemas.predictions import PredictionEvent, PredictionRequest, RoundMessage, TriggerType
from schemas.sleep import DataSnapshot
from simulators.sleep_cohort import generate_cohort


def request_for(snapshot: DataSnapshot, now: datetime, timeout_s: float = 25) -> PredictionRequest:
    return PredictionRequest(prediction_id="pred_1", session_id="debate_1", tenant=snapshot.tenant,
                             user_id=snapshot.user_id, trigger_type=TriggerType.MANUAL_REQUEST, requested_by="u",
                             requested_at=now, deadline=now + timedelta(seconds=timeout_s),
                             completeness=completeness(snapshot), snapshot=snapshot)


def cohort_snapshot(seed: int = 3) -> DataSnapshot:
    user = generate_cohort(1, days=14, seed=seed, tenant="t1")[0]
    return build_snapshot("t1", user.user_id, user.records)


def run_to_end(msg: RoundMessage) -> list[PredictionEvent]:
    events: list[PredictionEvent] = []
    nxt: RoundMessage | None = msg
    while nxt is not None:
        out, nxt = advance(nxt, lambda: datetime.now(UTC))
        events += out
    return events


def test_a_debate_runs_round_by_round_to_one_completed_result() -> None:
    snapshot = cohort_snapshot()
    events = run_to_end(first_round(request_for(snapshot, datetime.now(UTC))))
    rounds = [e for e in events if e.kind == "round"]
    assert 1 <= len(rounds) <= MAX_ROUNDS
    assert [e.round.round_number for e in rounds] == list(range(1, len(rounds) + 1))
    assert all({o.agent_type for o in e.round.expert_opinions} == set(AgentType) for e in rounds)
    final = events[-1]
    assert final.kind == "completed" and [e.kind for e in events].count("completed") == 1
    assert final.outcome.total_rounds == len(rounds) and final.round == rounds[-1].round
    assert final.recommendations.total_recommendations == len(final.recommendations.recommendations) > 0
    last = [o.sol_score for o in rounds[-1].round.expert_opinions]
    assert min(last) <= final.outcome.sol_score <= max(last)
    # The night predicted is the one after the last diary entry.
    assert final.target_date == snapshot.diary[-1].date + timedelta(days=1)


def test_a_replayed_round_gives_the_same_opinions() -> None:
    """A worker killed mid-round: another one redoes it from the same message, with the same result."""
    msg = first_round(request_for(cohort_snapshot(), datetime.now(UTC)))
    first, _ = advance(msg, lambda: datetime.now(UTC))
    again, _ = advance(msg, lambda: datetime.now(UTC))
    strip = [(o.agent_type, o.sol_score, o.confidence, o.key_points) for o in first[0].round.expert_opinions]
    assert strip == [(o.agent_type, o.sol_score, o.confidence, o.key_points) for o in again[0].round.expert_opinions]


def test_past_the_deadline_the_prediction_fails_with_cod_p002() -> None:
    now = datetime.now(UTC)
    msg = first_round(request_for(cohort_snapshot(), now - timedelta(seconds=30)))
    events, nxt = advance(msg, lambda: now)
    assert nxt is None and [e.kind for e in events] == ["failed"] and events[0].error_code == "COD_P002"


def test_a_debate_without_any_data_fails_with_cod_p003() -> None:
    empty = DataSnapshot(tenant="t1", user_id="nobody")
    events, nxt = advance(first_round(request_for(empty, datetime.now(UTC))), lambda: datetime.now(UTC))
    assert nxt is None and events[-1].kind == "failed" and events[-1].error_code == "COD_P003"
