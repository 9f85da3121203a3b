"""Where a prediction request becomes debate rounds and a result: pure steps the worker's agents call.

`advance` runs one round of a `RoundMessage` and says what to publish: the round recorded, and either the
next round's message or the final result. Everything it needs travels in the message, so any worker can run
any round; a replayed round recomputes the same opinions and is dropped by its (session, round) key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from pipeline.predictions.debate import DebateFailed, conclude, quality_metrics, run_round, should_stop
from pipeline.predictions.experts import context, has_any_data
from pipeline.predictions.recommend import recommend
from schemas.predictions import EventKind, PredictionEvent, PredictionRequest, RoundMessage

Clock = Callable[[], datetime]

P002_TIMEOUT = "COD_P002"
P003_DEBATE_FAILED = "COD_P003"
P004_LLM_UNAVAILABLE = "COD_P004"


def first_round(request: PredictionRequest) -> RoundMessage:
    return RoundMessage(request=request, transcript=[])


def target_date(request: PredictionRequest) -> date | None:
    """The night the prediction is about: the one after the last diary entry in the snapshot."""
    diary = request.snapshot.diary
    return diary[-1].date + timedelta(days=1) if diary else None


def event(request: PredictionRequest, kind: EventKind, at: datetime, **fields: object) -> PredictionEvent:
    return PredictionEvent(target_date=target_date(request), kind=kind, prediction_id=request.prediction_id,
                           session_id=request.session_id, tenant=request.tenant, user_id=request.user_id,
                           trigger_type=request.trigger_type,
                           requested_at=request.requested_at, schedule_id=request.schedule_id, at=at,
                           priority=request.priority, requested_by=request.requested_by,
                           completeness=request.completeness, **fields)


def failed(request: PredictionRequest, code: str, message: str, at: datetime) -> PredictionEvent:
    return event(request, "failed", at, error_code=code, error_message=message)


def advance(msg: RoundMessage, now: Clock) -> tuple[list[PredictionEvent], RoundMessage | None]:
    """Run the next round; returns the events to publish and the next round's message (None when done)."""
    req = msg.request
    started = now()
    if started > req.deadline:
        limit = int((req.deadline - req.requested_at).total_seconds())
        return [failed(req, P002_TIMEOUT, f"prediction exceeded {limit} s after {len(msg.transcript)} round(s)",
                       started)], None
    try:
        ctx = context(req.snapshot) if has_any_data(req.snapshot) else None
        record = run_round(req.snapshot, msg.transcript, now, ctx)
    except (DebateFailed, ValueError, ArithmeticError) as exc:  # data the schema let through but no expert can read
        return [failed(req, P003_DEBATE_FAILED, f"the debate could not proceed: {exc}", now())], None
    transcript = [*msg.transcript, record]
    events = [event(req, "round", record.end_time, round=record)]
    if not should_stop(transcript):
        return events, RoundMessage(request=req, transcript=transcript)
    outcome = conclude(req.snapshot, transcript, ctx)
    events.append(event(req, "completed", now(), round=record, outcome=outcome, quality=quality_metrics(transcript),
                        recommendations=recommend(req.snapshot, outcome, req.prediction_id)))
    return events, None
