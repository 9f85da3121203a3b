"""How the predictions stream's result topics become rows: sleep records, predictions, rounds, analyses.

Every write skips erased users (docs/decisions.md "Erasure and rebuild": an erasure is forever,
even against a replay or a rebuild).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson
import pyarrow as pa
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from pipeline.storage.materializer import Built, Context, Write
from schemas.predictions import PredictionEvent

NOT_ERASED = "NOT EXISTS (SELECT 1 FROM erasures e WHERE e.tenant = b.tenant AND e.user_id = b.user_id)"
TS = pa.timestamp("us", tz="UTC")

SLEEP_SCHEMA = pa.schema([("record_key", pa.string()), ("tenant", pa.string()), ("user_id", pa.string()),
                          ("kind", pa.string()), ("date", pa.date32()), ("data", pa.string()),
                          ("received_at", pa.timestamp("ms", tz="UTC"))])


def build_sleep_records(msgs: Sequence[ConsumerRecord], ctx: Context) -> Built:
    latest: dict[str, dict[str, Any]] = {}  # a batch may correct the same night twice: the last one wins
    rejected = []
    for m in msgs:
        try:
            row = orjson.loads(m.value)
            row["data"] = orjson.dumps(row["data"]).decode()
            row["date"] = date.fromisoformat(row["date"])
            latest[row["record_key"]] = row
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            rejected.append((m, f"not a sleep record row: {exc}"))
    batch = pa.Table.from_pylist(list(latest.values()), schema=SLEEP_SCHEMA)
    sql = f"INSERT OR REPLACE INTO sleep_records BY NAME SELECT * FROM _batch b WHERE {NOT_ERASED}"
    return Built(None, rejected, [Write("sleep_records", batch, sql=sql)])


PREDICTION_COLUMNS = ("status", "completed_at", "processing_time_ms", "sol_score", "confidence_score",
                      "consensus_reached", "total_rounds", "final_consensus_score", "debate_time_ms",
                      "key_findings", "concern_areas", "outcome", "quality", "error_code", "error_message")
# A terminal event settles an IN_PROGRESS prediction once; a replay (or a late duplicate) changes nothing.
PREDICTIONS_UPSERT = (
    f"INSERT INTO predictions BY NAME SELECT * FROM _batch b WHERE {NOT_ERASED} "
    f"ON CONFLICT (prediction_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in PREDICTION_COLUMNS)
    + " WHERE predictions.status = 'IN_PROGRESS'"
)


def build_prediction_events(msgs: Sequence[ConsumerRecord], ctx: Context) -> Built:
    rounds, terminal, analyses, recs, rejected = [], {}, [], [], []
    for m in msgs:
        try:
            ev = PredictionEvent.model_validate_json(m.value)
        except ValidationError as exc:
            rejected.append((m, f"not a prediction event: {exc.errors(include_url=False)[:2]}"))
            continue
        if ev.kind == "round" and ev.round is not None:
            rounds.append(_round_row(ev))
        elif ev.kind in ("completed", "failed") and ev.prediction_id not in terminal:
            terminal[ev.prediction_id] = _prediction_row(ev)
            if ev.kind == "completed" and ev.round is not None:
                analyses += _analysis_rows(ev)
            if ev.recommendations is not None:
                recs.append({"prediction_id": ev.prediction_id, "tenant": ev.tenant, "user_id": ev.user_id,
                             "body": ev.recommendations.model_dump_json(by_alias=True), "created_at": ev.at})
    writes = [
        Write("debate_rounds", _table(rounds), sql=_ignore("debate_rounds")),
        Write("predictions", _table(list(terminal.values())), sql=PREDICTIONS_UPSERT),
        Write("expert_analyses", _table(analyses), sql=_ignore("expert_analyses")),
        Write("recommendations", _table(recs), sql=_ignore("recommendations")),
    ]
    return Built(None, rejected, writes)


def _ignore(table: str) -> str:
    return f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM _batch b WHERE {NOT_ERASED}"


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows) if rows else pa.table({"tenant": pa.array([], pa.string()),
                                                             "user_id": pa.array([], pa.string())})


def _round_row(ev: PredictionEvent) -> dict[str, Any]:
    r = ev.round
    return {"session_id": ev.session_id, "round_number": r.round_number, "prediction_id": ev.prediction_id,
            "tenant": ev.tenant, "user_id": ev.user_id, "start_time": r.start_time, "end_time": r.end_time,
            "consensus_score": r.consensus_score,
            "expert_opinions": orjson.dumps([o.model_dump(mode="json", by_alias=True)
                                             for o in r.expert_opinions]).decode()}


def _prediction_row(ev: PredictionEvent) -> dict[str, Any]:
    o = ev.outcome
    row: dict[str, Any] = {
        "prediction_id": ev.prediction_id, "tenant": ev.tenant, "user_id": ev.user_id,
        "trigger_type": ev.trigger_type.value, "priority": ev.priority.value, "requested_by": ev.requested_by,
        "schedule_id": ev.schedule_id, "session_id": ev.session_id, "created_at": ev.requested_at,
        "target_date": ev.target_date,
        "status": "COMPLETED" if ev.kind == "completed" else "FAILED", "completed_at": ev.at,
        "processing_time_ms": int((ev.at - ev.requested_at).total_seconds() * 1000),
        "data_completeness": ev.completeness.model_dump_json(by_alias=True) if ev.completeness else None,
        "quality": ev.quality.model_dump_json(by_alias=True) if ev.quality else None,
        "error_code": ev.error_code, "error_message": ev.error_message,
    }
    if o is not None:
        row |= {"sol_score": o.sol_score, "confidence_score": o.confidence_score,
                "consensus_reached": o.consensus_reached, "total_rounds": o.total_rounds,
                "final_consensus_score": o.final_consensus_score, "key_findings": orjson.dumps(o.key_findings).decode(),
                "concern_areas": orjson.dumps(o.concern_areas).decode(), "outcome": o.model_dump_json(by_alias=True)}
    if ev.quality is not None and o is not None:
        row["debate_time_ms"] = int(ev.quality.average_round_time * o.total_rounds)
    return {k: row.get(k) for k in ("prediction_id", "tenant", "user_id", "trigger_type", "priority",
                                    "requested_by", "schedule_id", "session_id", "created_at", "target_date",
                                    "data_completeness", *PREDICTION_COLUMNS)}


def analysis_id(prediction_id: str, agent: str) -> str:
    return f"analysis_{prediction_id.removeprefix('pred_')}_{agent.lower()}"


def _analysis_rows(ev: PredictionEvent) -> list[dict[str, Any]]:
    r = ev.round
    return [{"analysis_id": analysis_id(ev.prediction_id, o.agent_type.value), "prediction_id": ev.prediction_id,
             "session_id": ev.session_id, "tenant": ev.tenant, "user_id": ev.user_id,
             "agent_type": o.agent_type.value, "round_number": r.round_number, "sol_score": o.sol_score,
             "confidence": o.confidence, "processing_time_ms": o.response_time_ms,
             "opinion": o.model_dump_json(by_alias=True), "created_at": ev.at,
             "llm_info": orjson.dumps(ev.llm_info).decode() if ev.llm_info else None} for o in r.expert_opinions]


ERASURE_SCHEMA = pa.schema([("tenant", pa.string()), ("user_id", pa.string()), ("erased_at", TS)])


def build_erasures(msgs: Sequence[ConsumerRecord], ctx: Context) -> Built:
    """`privacy.erasures` -> the erasures list, and the user's rows deleted (a replica or a rebuild catches up)."""
    from pipeline.storage.queries.user_data import ARCHIVED, CALLS, USER_TABLES

    rows, rejected = [], []
    for m in msgs:
        try:
            d = orjson.loads(m.value)
            rows.append({"tenant": str(d["tenant"]), "user_id": str(d["user_id"]), "erased_at": m.timestamp * 1000})
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            rejected.append((m, f"not an erasure record: {exc}"))
    batch = pa.Table.from_pylist(rows, schema=ERASURE_SCHEMA)
    writes = [Write("erasures", batch, sql="INSERT OR IGNORE INTO erasures BY NAME SELECT * FROM _batch")]
    targets = [(t, *cols) for t, cols in USER_TABLES.items()] + [(f"archive_{t}", "tenant", "user_id")
                                                                  for t in ARCHIVED] + [CALLS]
    for table, t, u in targets:
        writes.append(Write(table, batch, sql=f"DELETE FROM {table} WHERE ({t}, {u}) IN "
                                              f"(SELECT tenant, user_id FROM _batch)"))
    return Built(None, rejected, writes)
