"""Routes tested with no broker and no worker: the parts they depend on are swapped with `dependency_overrides`.

The example for route tests: the app is built as in production (`create_app`), lifespan never runs, and the
test hands the routes a real DuckDB file (written the way the materializer writes it) and a publisher that
records what it is given, or fails as a dead broker does.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition

from api.deps import get_publisher, get_store
from api.main import create_app
from api.refusals import BrokerUnavailable
from pipeline.security import Role, mint_token
from pipeline.storage.store import Store
from tests.helpers import call_event, checked_client, normalized


class RecordingPublisher:
    """What a route publishes, kept in memory; `down` makes every send fail as it does without a broker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], bytes]] = []
        self.down = False

    async def send_json_batches(self, topic: str, items: list[Any], key: bytes) -> int:
        if self.down:
            raise BrokerUnavailable(topic, "KafkaTimeoutError")
        self.sent.append((topic, items, key))
        return 1


@pytest.fixture
def api(materializer):
    """The app over the materializer fixture's file, with 60 stored calls: tenants 1, 2 and 3, 20 each."""
    materializer._write({TopicPartition("calls.normalized", 0): normalized(0, 60)})
    app = create_app(materializer.settings)
    publisher = RecordingPublisher()
    app.dependency_overrides[get_store] = lambda: Store(materializer.con)
    app.dependency_overrides[get_publisher] = lambda: publisher
    client = checked_client(app)  # not entered: lifespan (broker, materializer, loops) never starts
    key = materializer.settings.jwt_key()
    client.as_tenant = lambda tenant, *roles: {  # type: ignore[attr-defined]
        "Authorization": f"Bearer {mint_token(key, 'u1', tenant, list(roles))}"}
    client.publisher = publisher  # type: ignore[attr-defined]
    return client


def test_a_tenants_reader_sees_its_own_calls_only(api):
    own = api.get("/v1/call-histories?limit=1000", headers=api.as_tenant("2", Role.IAM_ADMIN))
    assert own.status_code == 200
    assert {r["tenant_id"] for r in own.json()["items"]} == {"2"} and len(own.json()["items"]) == 20

    other = api.get("/v1/call-histories?tenant_id=1", headers=api.as_tenant("2", Role.IAM_ADMIN))
    assert other.status_code == 403 and other.json()["error"]["code"] == "FORBIDDEN"

    everyone = api.get("/v1/call-histories?limit=1000", headers=api.as_tenant("2", Role.SYSTEM_ADMIN))
    assert len(everyone.json()["items"]) == 60


def test_posted_calls_are_published_redacted_under_the_callers_tenant(api):
    body = [call_event(1, tenant_id=None, query_string="user=a&password=hunter2"), call_event(2, tenant_id="7")]
    r = api.post("/v1/call-histories", json=body, headers=api.as_tenant("7", Role.SERVICE_ACCOUNT))
    assert r.status_code == 202 and r.json()["accepted"] == 2
    [(topic, events, key)] = api.publisher.sent
    assert topic == "calls.raw" and key == b"7"
    assert [e["tenant_id"] for e in events] == ["7", "7"]
    assert "hunter2" not in str(events) and "password=" in events[0]["query_string"]
    assert [e["api_call_history_id"] for e in events] == r.json()["ids"]


def test_another_tenants_event_refuses_the_whole_post_and_publishes_nothing(api):
    body = [call_event(1, tenant_id="7"), call_event(2, tenant_id="8")]
    r = api.post("/v1/call-histories", json=body, headers=api.as_tenant("7", Role.SERVICE_ACCOUNT))
    assert r.status_code == 422 and r.json()["error"]["details"] == [
        {"index": 1, "error": "tenant_id 8 is not your tenant"}]
    assert api.publisher.sent == []


def test_a_dead_broker_is_a_503_with_retry_after_in_the_routes_shape(api):
    api.publisher.down = True
    r = api.post("/v1/call-histories", json=call_event(1, tenant_id="7"),
                 headers=api.as_tenant("7", Role.SERVICE_ACCOUNT))
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.json()["error"]["code"] == "BROKER_UNAVAILABLE" and "calls.raw" in r.json()["error"]["message"]
