"""The optional LLM voice: an OpenAI-compatible LLM *simulator* on loopback words the experts' key points
(numbers stay the rules'); an unreachable LLM fails the prediction with COD_P004."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Request

from api.main import create_app
from pipeline.broker.embedded import free_port
from pipeline.broker.kafka import ensure_topics
from pipeline.broker.topics import pipeline_topics
from pipeline.security import Role
from pipeline.settings import Settings
from simulators.sleep_cohort import generate_cohort
from tests.helpers import checked_client, start_cli, stop_process, wait_for
from tests.integration.conftest import env_for
from tests.integration.predictions_env import TENANT, auth

pytestmark = pytest.mark.integration


def llm_simulator() -> FastAPI:
    """Answers chat completions the way an OpenAI-compatible server does, with a fixed voice per expert."""
    app = FastAPI()
    app.state.calls = 0

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> dict:
        app.state.calls += 1
        body = await request.json()
        experts = orjson.loads(body["messages"][-1]["content"])
        content = {e["agentType"]: {"keyPoints": [f"[sim] {e['agentType']} 의견: SOL {e['solScore']}분"],
                                    "reasoning": "simulated voice"} for e in experts}
        return {"id": "cmpl-sim", "model": "sim-llm", "system_fingerprint": "sim-1",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": orjson.dumps(content).decode()}}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}}

    return app


@pytest.fixture
def llm_url():
    app = llm_simulator()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10, "LLM simulator up")
    yield f"http://127.0.0.1:{port}/v1", app
    server.should_exit = True
    thread.join(5)


def _system(broker, tmp_path, llm: str):
    s = Settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path / "data", partitions=1, llm_url=llm,
                 topic_prefix=f"llm{uuid.uuid4().hex[:8]}.", _env_file=None)
    asyncio.run(ensure_topics(broker.bootstrap, pipeline_topics(s)))
    worker = start_cli(["worker"], env_for(s) | {"STREAMDESK_LLM_URL": llm}, tmp_path / "worker.log")
    return s, worker


def _predict_one(client, s) -> dict:
    user = generate_cohort(1, days=10, seed=4, tenant=TENANT)[0]
    body = [r.model_dump(mode="json") for r in user.records]
    r = client.post("/v1/sol-cod/sleep-records", json=body, headers=auth(client, Role.SERVICE_ACCOUNT))
    assert r.status_code == 202
    cur = client.app.state.services.store.con.cursor()
    wait_for(lambda: cur.execute("SELECT count(*) FROM sleep_records").fetchone()[0] == len(body), 60, "records")
    headers = auth(client, Role.REGULAR_USER, user.user_id)
    r = client.post("/v1/sol-cod/predict", json={"userId": user.user_id}, headers=headers)
    pid = r.json()["data"]["predictionId"]

    def settled() -> dict | None:
        d = client.get(f"/v1/sol-cod/predictions/{pid}", headers=headers).json()["data"]
        return d if d["status"] != "IN_PROGRESS" else None

    return wait_for(settled, 60, "settled", interval_s=0.1)


def test_the_llm_words_the_opinions_and_is_named_in_llm_info(broker, tmp_path, llm_url):
    url, sim = llm_url
    s, worker = _system(broker, tmp_path, url)
    try:
        with checked_client(create_app(s)) as client:
            client.settings = s
            done = _predict_one(client, s)
            assert done["status"] == "COMPLETED" and sim.state.calls == done["debateInfo"]["totalRounds"]
            staff = auth(client, Role.SYSTEM_ADMIN, "root")
            debate = client.get(f"/v1/sol-cod/debates/{done['debateInfo']['sessionId']}", headers=staff).json()["data"]
            first = debate["rounds"][0]["expertOpinions"][0]
            assert first["keyPoints"][0].startswith("[sim]") and str(first["solScore"]) in first["keyPoints"][0]
            analysis = client.get(f"/v1/sol-cod/analyses/expert/{debate['analyses'][0]['analysisId']}",
                                  headers=staff).json()["data"]
            assert analysis["llmInfo"] == {"model": "sim-llm", "version": "sim-1", "promptVersion": "v1",
                                           "tokenUsage": {"input": 120, "output": 40, "total": 160}}
    finally:
        stop_process(worker)


def test_an_unreachable_llm_fails_the_prediction_with_cod_p004(broker, tmp_path):
    s, worker = _system(broker, tmp_path, f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    try:
        with checked_client(create_app(s)) as client:
            client.settings = s
            started = time.monotonic()
            done = _predict_one(client, s)
            assert done["status"] == "FAILED" and done["error"]["code"] == "COD_P004", done
            assert time.monotonic() - started < 60
    finally:
        stop_process(worker)
