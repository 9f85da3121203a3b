"""Seed 004 §1 and §3: predict, prediction by id and history, debates, expert analyses, recommendations.

Mounted under both `/v1/sol-cod` and `/v1/sleep-quality-cod`. Another tenant's (or, for a regular user,
another user's) resource answers COD_004, exactly as one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.cod_envelope import CodError, ok, only_self, subject_user, tenant_filter, visible
from api.deps import PredictorDep, PublisherDep, SettingsDep, StoreDep
from api.errors import MAX_ERRORS, validation_details
from api.limits import TooLarge
from api.security import matrix
from api.wire import iso_z, prediction_public, rounded
from pipeline.broker.topics import SLEEP_RECORDS
from pipeline.predictions.llm_wording import RULES_INFO
from pipeline.security import Principal
from pipeline.storage.queries import predictions as q
from pipeline.storage.store import Store
from schemas.cod_api import Debate, Envelope, ExpertAnalysis, History, PredictAccepted, Prediction, RecordsAccepted
from schemas.debate import RecommendationSet
from schemas.predictions import PredictBody
from schemas.sleep import SleepRecord
from schemas.strict import IsoDate, IsoDateTime

router = APIRouter(tags=["predictions (seed 004)"])
MAX_OFFSET = 1_000_000  # far past any user's history; bigger numbers would overflow DuckDB's BIGINT

PredictAuth = matrix("predict")
PredictionAuth = matrix("prediction")
HistoryAuth = matrix("history")
DebateAuth = matrix("debate")
AnalysisAuth = matrix("analysis")
RecommendationsAuth = matrix("recommendations")
SleepRecordsAuth = matrix("sleep_records")


@router.post("/predict", status_code=202, response_model=Envelope[PredictAccepted])
async def predict(request: Request, principal: PredictAuth, predictor: PredictorDep, body: PredictBody) -> JSONResponse:
    """Checks completeness and concurrency, records the prediction IN_PROGRESS, publishes the request."""
    if only_self(principal) and body.user_id != principal.user_id:
        raise CodError("COD_003", "일반 사용자는 자신의 예측만 요청할 수 있습니다")
    data = await predictor.start(principal.tenant_id, body.user_id, body.trigger_type, principal.user_id,
                                 body.analysis_scope, body.options)
    return ok(request, data, 202)


@router.post("/sleep-records", status_code=202, response_model=Envelope[RecordsAccepted])
async def post_sleep_records(
    request: Request, principal: SleepRecordsAuth, publisher: PublisherDep, settings: SettingsDep,
    body: Annotated[dict[str, Any] | list[dict[str, Any]], Body(description="sleep.records message(s)")],
) -> JSONResponse:
    """Convenience entry (added): publishes to `sleep.records` as a producer would; tenant is the caller's.

    The body may be up to STREAMDESK_MAX_MESSAGE_BYTES; the records go out as as many messages as keep each
    within that limit, all acknowledged before `accepted` is answered.
    """
    records = body if isinstance(body, list) else [body]
    if not 1 <= len(records) <= 1000:
        raise CodError("COD_001", "1-1000개의 기록을 보내세요")
    for r in records:
        r.setdefault("tenant", principal.tenant_id)
        if r["tenant"] != principal.tenant_id and tenant_filter(principal) is not None:
            raise CodError("COD_003", "다른 테넌트의 기록은 보낼 수 없습니다")
        if only_self(principal) and r.get("user_id", principal.user_id) != principal.user_id:
            raise CodError("COD_003", "일반 사용자는 자신의 기록만 보낼 수 있습니다")
        r.setdefault("user_id", principal.user_id)
    _validate_records(records)
    try:
        await publisher.send_json_batches(SLEEP_RECORDS, records, principal.user_id.encode())
    except TooLarge as exc:
        raise CodError("COD_001", str(exc)) from None
    return ok(request, {"accepted": len(records), "topic": settings.topic(SLEEP_RECORDS)}, 202)


def _validate_records(records: list[dict[str, Any]]) -> None:
    errors = []
    for i, r in enumerate(records):
        try:
            SleepRecord.model_validate(r)
        except ValidationError as exc:
            errors.append({"index": i, "errors": validation_details(exc.errors(include_url=False))})
    if errors:
        raise CodError("COD_001", "요청 데이터 유효성 검증 실패", errors[:MAX_ERRORS])


@router.get("/predictions/history", response_model=Envelope[History])
async def prediction_history(
    request: Request, principal: HistoryAuth, store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    start_date: Annotated[IsoDateTime | IsoDate | None, Query(alias="startDate")] = None,
    end_date: Annotated[IsoDateTime | IsoDate | None, Query(alias="endDate")] = None,
    status: Literal["ALL", "COMPLETED", "FAILED", "IN_PROGRESS"] = "ALL",
    user_id: Annotated[str | None, Query(alias="userId", description="staff only; default: yourself")] = None,
) -> JSONResponse:
    user = subject_user(principal, user_id)
    rows, s = await store.run(q.list_predictions, tenant_filter(principal), user,
                              None if status == "ALL" else status, start_date, end_date, limit, offset)
    return ok(request, {
        "predictions": [_history_item(r) for r in rows],
        "pagination": {"total": s["total"], "limit": limit, "offset": offset,
                       "hasNext": offset + len(rows) < s["total"]},
        "summary": {"averageSOLScore": rounded(s["average_sol"]),
                    "averageConfidenceScore": rounded(s["average_confidence"], 2),
                    "totalPredictions": s["total"], "lastPredictionDate": iso_z(s["last"])},
    })


def _history_item(r: dict[str, Any]) -> dict[str, Any]:
    return {"predictionId": r["prediction_id"], "predictionDate": iso_z(r["created_at"]), "status": r["status"],
            "solScore": rounded(r["sol_score"]), "confidenceScore": rounded(r["confidence_score"], 2),
            "processingTime": r["processing_time_ms"], "participatingAgents": 4, "triggerType": r["trigger_type"]}


async def _visible_prediction(store: Store, principal: Principal, prediction_id: str) -> dict[str, Any]:
    row = await store.run(q.get_prediction, prediction_id)
    if row is None or not visible(principal, row["tenant"], row["user_id"]):
        raise CodError("COD_004", f"예측 리소스를 찾을 수 없습니다: {prediction_id}")
    return row


@router.get("/predictions/{prediction_id}", response_model=Envelope[Prediction])
async def get_prediction(request: Request, principal: PredictionAuth, store: StoreDep,
                         prediction_id: str) -> JSONResponse:
    return ok(request, prediction_public(await _visible_prediction(store, principal, prediction_id)))


JUDGE_KEYS = ("aggregation", "judgeReasoning", "baselinePlainAverage", "intervalLow", "intervalHigh", "intervalLevel",
              "firstRoundSol", "naiveForecasts", "expertWeights")


@router.get("/debates/{session_id}", response_model=Envelope[Debate])
async def get_debate(request: Request, principal: DebateAuth, store: StoreDep, session_id: str) -> JSONResponse:
    row = await store.run(q.prediction_by_session, session_id)
    if row is None or not visible(principal, row["tenant"], row["user_id"]):
        raise CodError("COD_004", f"토론 세션을 찾을 수 없습니다: {session_id}")
    rounds = await store.run(q.get_rounds, session_id)
    quality = row["quality"] or {}
    return ok(request, {
        "sessionId": session_id, "predictionId": row["prediction_id"], "status": row["status"],
        "participatingAgents": 4, "totalRounds": row["total_rounds"] or len(rounds),
        "consensusReached": row["consensus_reached"], "finalConsensusScore": row["final_consensus_score"],
        "totalDebateTime": row["debate_time_ms"],
        "judge": {k: (row["outcome"] or {}).get(k) for k in JUDGE_KEYS},
        "rounds": [{**r, "startTime": iso_z(r["startTime"]), "endTime": iso_z(r["endTime"])} for r in rounds],
        "qualityMetrics": quality or None,
        "analyses": await store.run(q.analyses_of, row["prediction_id"]),
    })


@router.get("/analyses/expert/{analysis_id}", response_model=Envelope[ExpertAnalysis])
async def get_expert_analysis(request: Request, principal: AnalysisAuth, store: StoreDep,
                              analysis_id: str) -> JSONResponse:
    a = await store.run(q.get_analysis, analysis_id)
    if a is None or not visible(principal, a["tenant"], a["user_id"]):
        raise CodError("COD_004", f"전문가 분석을 찾을 수 없습니다: {analysis_id}")
    o = a["opinion"]
    return ok(request, {
        "analysisId": a["analysis_id"], "predictionId": a["prediction_id"], "agentType": a["agent_type"],
        "solScore": o.get("solScore"), "confidenceScore": o.get("confidence"),
        "processingTime": a["processing_time_ms"],
        "analysisResult": {**o.get("analysisResult", {}), "keyPatterns": o.get("keyPoints", []),
                           "riskFactors": o.get("riskFactors", [])},
        "evidenceData": o.get("evidence", []), "reasoning": o.get("reasoning"),
        "llmInfo": a["llm_info"] or RULES_INFO,
    })


@router.get("/recommendations/{prediction_id}", response_model=Envelope[RecommendationSet])
async def get_recommendations(request: Request, principal: RecommendationsAuth, store: StoreDep,
                              prediction_id: str) -> JSONResponse:
    await _visible_prediction(store, principal, prediction_id)
    body = await store.run(q.get_recommendations, prediction_id)
    if body is None:
        raise CodError("COD_004", f"권장사항이 아직 없습니다 (예측이 완료되지 않았거나 실패): {prediction_id}")
    return ok(request, {"predictionId": prediction_id, **body})
