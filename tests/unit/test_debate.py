"""The round engine and the judge: rounds stop, the verdict is sane, failures are named, the wire shape holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.predictions.debate import (
    CONSENSUS_THRESHOLD,
    MAX_ROUNDS,
    DebateFailed,
    conclude,
    consensus_score,
    quality_metrics,
    run_debate,
    run_round,
    should_stop,
)
from pipeline.predictions.features import build_snapshot
from schemas.debate import AgentType, DebateOutcome, Opinion, RoundRecord
from schemas.sleep import DataSnapshot
from simulators.sleep_cohort import generate_cohort

T0 = datetime(2025, 8, 31, 14, 0, tzinfo=UTC)


class FakeClock:
    """Advances 5 ms every time it is read."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        self.t += timedelta(milliseconds=5)
        return self.t


def cohort_snapshots(n: int = 40, seed: int = 7) -> list[DataSnapshot]:
    return [build_snapshot("cohort", u.user_id, u.records) for u in generate_cohort(n, seed=seed)]


def opinion(agent: AgentType, sol: float, confidence: float) -> Opinion:
    return Opinion(agent_type=agent, sol_score=sol, confidence=confidence)


def round_of(number: int, consensus: float, opinions: list[Opinion] | None = None) -> RoundRecord:
    return RoundRecord(round_number=number, start_time=T0, end_time=T0 + timedelta(seconds=1),
                       consensus_score=consensus, expert_opinions=opinions or [])


def test_debates_on_cohort_users_stop_within_max_rounds_and_every_revision_is_better_tested():
    revisions = 0
    for snap in cohort_snapshots():
        transcript, outcome = run_debate(snap, FakeClock())
        assert 2 <= len(transcript) <= MAX_ROUNDS == 4  # with a diary the experts always hear each other once
        assert [r.round_number for r in transcript] == list(range(1, len(transcript) + 1))
        assert should_stop(transcript)
        scores = [r.consensus_score for r in transcript]
        for before, after in zip(transcript, transcript[1:], strict=False):
            was = {o.agent_type: o.analysis_result["backtest"]["relativeToLevel"] for o in before.expert_opinions}
            for o in after.expert_opinions:
                if o.revised:  # an expert takes a peer's evidence only when its own backtest improves with it
                    revisions += 1
                    assert o.analysis_result["backtest"]["relativeToLevel"] < was[o.agent_type]
                    assert "백테스트" in o.reasoning
        assert outcome.total_rounds == len(transcript)
        assert outcome.consensus_reached == (scores[-1] >= CONSENSUS_THRESHOLD)
    assert revisions > 0


def test_the_verdict_lies_between_the_experts_and_keeps_the_plain_average_beside_it():
    for snap in cohort_snapshots(20):
        transcript, outcome = run_debate(snap, FakeClock())
        last = [o.sol_score for o in transcript[-1].expert_opinions]
        assert min(last) - 0.05 <= outcome.sol_score <= max(last) + 0.05
        assert outcome.baseline_plain_average == pytest.approx(sum(last) / len(last), abs=0.05)
        assert outcome.per_agent_final == {o.agent_type: o.sol_score for o in transcript[-1].expert_opinions}
        assert 0 < outcome.confidence_score <= 1
        assert outcome.key_findings or outcome.concern_areas


def test_the_judge_leans_toward_the_confident_expert():
    opinions = [opinion(AgentType.SLEEP_PATTERN, 20, 0.9), opinion(AgentType.CBTI, 40, 0.2)]
    outcome = conclude(cohort_snapshots(1)[0], [round_of(1, consensus_score(opinions), opinions)])
    assert outcome.sol_score < 22
    assert outcome.baseline_plain_average == 30


def test_no_data_at_all_fails_the_debate():
    empty = DataSnapshot(tenant="t1", user_id="u1")
    with pytest.raises(DebateFailed):
        run_round(empty, [], FakeClock())
    with pytest.raises(DebateFailed):
        run_debate(empty, FakeClock())
    with pytest.raises(DebateFailed):
        conclude(cohort_snapshots(1)[0], [])


def test_a_round_past_the_maximum_is_refused():
    snap = cohort_snapshots(1)[0]
    transcript = [round_of(i, 0.1) for i in range(1, MAX_ROUNDS + 1)]
    with pytest.raises(DebateFailed):
        run_round(snap, transcript, FakeClock())


def test_rounds_are_reproducible_and_round_two_hears_round_one():
    snap = cohort_snapshots(1, seed=3)[0]
    first = run_round(snap, [], FakeClock())
    assert first == run_round(snap, [], FakeClock())
    second = run_round(snap, [first], FakeClock())
    assert second.round_number == 2
    assert any(o.revised for o in second.expert_opinions)
    assert not any(o.revised for o in first.expert_opinions)
    assert second.consensus_score > first.consensus_score


def test_a_transcript_that_travelled_as_json_continues_the_same_way():
    snap = cohort_snapshots(1, seed=5)[0]
    first = run_round(snap, [], FakeClock())
    by_alias = RoundRecord.model_validate_json(first.model_dump_json(by_alias=True))
    by_name = RoundRecord.model_validate_json(first.model_dump_json())
    assert by_alias == first == by_name
    assert run_round(snap, [by_alias], FakeClock()) == run_round(snap, [first], FakeClock())


def test_timings_come_from_the_clock_passed_in():
    record = run_round(cohort_snapshots(1)[0], [], FakeClock())
    assert record.start_time == T0 + timedelta(milliseconds=5)
    assert all(o.response_time_ms == 5 for o in record.expert_opinions)
    assert record.duration_ms == 45  # start, 4 x (before, after), end: 10 readings 5 ms apart
    assert quality_metrics([record]).average_round_time == 45


def test_consensus_score_is_one_for_agreement_and_zero_for_experts_far_apart():
    agree = [opinion(a, 30, 0.7) for a in AgentType]
    apart = [opinion(AgentType.SLEEP_PATTERN, 10, 0.7), opinion(AgentType.CBTI, 70, 0.7)]
    some = [opinion(AgentType.SLEEP_PATTERN, 25, 0.7), opinion(AgentType.CBTI, 35, 0.7)]
    assert consensus_score(agree) == 1.0
    assert consensus_score(apart) == 0.0
    assert consensus_score(some) == pytest.approx(0.75)  # SD 5 min on a 20-min scale


def test_should_stop_on_consensus_on_a_stall_and_at_max_rounds():
    assert not should_stop([])
    assert should_stop([round_of(1, CONSENSUS_THRESHOLD)])
    assert not should_stop([round_of(1, 0.5)])
    assert not should_stop([round_of(1, 0.5), round_of(2, 0.6)])
    assert should_stop([round_of(1, 0.5), round_of(2, 0.51)])  # improved by less than MIN_GAIN
    assert should_stop([round_of(i, 0.1 * i) for i in range(1, MAX_ROUNDS + 1)])


def test_quality_metrics_show_the_shrinking_disagreement():
    first = [opinion(AgentType.SLEEP_PATTERN, 20, 0.5), opinion(AgentType.CBTI, 40, 0.5)]
    last = [opinion(AgentType.SLEEP_PATTERN, 28, 0.5), opinion(AgentType.CBTI, 32, 0.5)]
    metrics = quality_metrics([round_of(1, consensus_score(first), first), round_of(2, consensus_score(last), last)])
    assert metrics.convergence_rate == pytest.approx(0.8)  # SD 10 -> 2
    assert metrics.participation_balance == pytest.approx(1.0)
    assert metrics.opinion_variance == pytest.approx(4 / 400)
    assert metrics.average_round_time == 1000
    lopsided = [opinion(AgentType.SLEEP_PATTERN, 28, 0.9), opinion(AgentType.CBTI, 32, 0.1)]
    assert quality_metrics([round_of(1, consensus_score(lopsided), lopsided)]).participation_balance < 0.5


def test_debate_models_dump_with_the_seeds_camel_case_keys():
    transcript, outcome = run_debate(cohort_snapshots(1)[0], FakeClock())
    doc = transcript[0].model_dump(by_alias=True, mode="json")
    assert {"roundNumber", "startTime", "endTime", "consensusScore", "expertOpinions"} <= set(doc)
    assert doc["startTime"].endswith("Z") or doc["startTime"].endswith("+00:00")
    assert {"agentType", "solScore", "confidence", "keyPoints", "responseTime"} <= set(doc["expertOpinions"][0])
    result = outcome.model_dump(by_alias=True, mode="json")
    assert {"solScore", "confidenceScore", "consensusReached", "finalConsensusScore", "totalRounds", "keyFindings",
            "concernAreas", "judgeReasoning", "aggregation", "baselinePlainAverage", "perAgentFinal"} <= set(result)
    assert set(result["perAgentFinal"]) == {a.value for a in AgentType}
    assert DebateOutcome.model_validate(result) == outcome
    quality = quality_metrics(transcript).model_dump(by_alias=True)
    assert set(quality) == {"averageRoundTime", "opinionVariance", "convergenceRate", "participationBalance"}
