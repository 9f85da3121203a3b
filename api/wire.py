"""Stored rows in the seeds' wire shapes, for the routers (and the export) that answer with the same things."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso_z(v: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, as the seeds write times; None stays None."""
    return v.astimezone(UTC).isoformat().replace("+00:00", "Z") if v is not None else None


def rounded(v: float | None, digits: int | None = None) -> float | int | None:
    """A score as the seeds show it: whole minutes, or `digits` decimals; None stays None."""
    return None if v is None else round(v, digits) if digits else round(v)


def prediction_public(r: dict[str, Any]) -> dict[str, Any]:
    comp = r["data_completeness"] or {}
    data: dict[str, Any] = {
        "predictionId": r["prediction_id"], "userId": r["user_id"],
        "predictionDate": r["created_at"].date().isoformat(), "status": r["status"],
        "processingTime": r["processing_time_ms"], "triggerType": r["trigger_type"], "result": None,
        "dataUsed": {"sleepDataDays": comp.get("sleepDays"),
                     "questionnaireIncluded": comp.get("questionnaireAvailable"),
                     "mobileDataAvailable": comp.get("mobileDataAvailable"),
                     "dataQualityScore": comp.get("totalScore")},
        "debateInfo": {"sessionId": r["session_id"], "totalRounds": r["total_rounds"],
                       "finalConsensusScore": r["final_consensus_score"], "debateTime": r["debate_time_ms"]},
    }
    if r["status"] == "COMPLETED":
        data["result"] = {"solScore": rounded(r["sol_score"]), "confidenceScore": rounded(r["confidence_score"], 2),
                          "participatingAgents": 4, "consensusReached": r["consensus_reached"],
                          "keyFindings": r["key_findings"], "concernAreas": r["concern_areas"],
                          **judged_extras(r.get("outcome") or {})}
    if r["status"] == "FAILED":
        data["error"] = {"code": r["error_code"], "message": r["error_message"]}
    return data


def judged_extras(outcome: dict[str, Any]) -> dict[str, Any]:
    """The result's additions to seed 004: the 80 % interval and the baselines the debate is measured against.

    Both come from the judge's stored outcome; a result made before they existed has neither key.
    """
    out: dict[str, Any] = {}
    if outcome.get("intervalLow") is not None and outcome.get("intervalHigh") is not None:
        out["predictionInterval"] = {"lower": outcome["intervalLow"], "upper": outcome["intervalHigh"],
                                     "level": outcome.get("intervalLevel", 0.8)}
    naive = outcome.get("naiveForecasts") or {}
    if outcome.get("baselinePlainAverage") is not None or naive:
        out["baselines"] = {"plainAverage": outcome.get("baselinePlainAverage"), "lastNight": naive.get("lastNight"),
                            "mean7": naive.get("mean7"), "median7": naive.get("median7")}
    return out
