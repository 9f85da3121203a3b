"""`tickets.raw` messages -> rows per table and dead letters; versions deduplicated."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from pipeline.broker.records import Message
from pipeline.tickets.dedupe import latest_per_key, supersedes, version_key
from pipeline.tickets.normalize import TABLES, normalize_messages
from schemas.tickets import Conversation, Ticket

TOPIC = "tickets.raw"
DOMAIN = "wedosoft.freshdesk.com"


def env(kind: str, record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"tenant": "wedosoft", "platform": "freshdesk", "domain": DOMAIN, "kind": kind, "record": record} | extra


def ticket(id_: int = 1001, **over: Any) -> dict[str, Any]:
    """A ticket as `GET /api/v2/tickets?include=description` returns it (Korean customer)."""
    return {
        "id": id_, "subject": "로그인이 되지 않습니다", "status": 2, "priority": 3, "source": 1, "type": "Problem",
        "description": "<div><p>안녕하세요,</p><p>오늘 아침부터 로그인할 수 없습니다.<br>비밀번호가 맞는데도 "
                       "&quot;잘못된 자격 증명&quot; 오류가 나옵니다.</p><script>track()</script></div>",
        "description_text": "안녕하세요,\n오늘 아침부터 로그인할 수 없습니다.", "tags": ["login", "sso"],
        "requester_id": 60000000001, "responder_id": None, "group_id": 62000000003, "company_id": None,
        "spam": False, "is_escalated": False, "fr_escalated": False, "cc_emails": [], "attachments": [],
        "custom_fields": {"cf_product": "Streamdesk Cloud"}, "created_at": "2025-06-22T14:30:52Z",
        "updated_at": "2025-06-22T15:00:00Z", "due_by": "2025-06-24T14:30:52Z", "fr_due_by": "2025-06-23T02:30:52Z",
    } | over


def conversation(id_: int = 5001, ticket_id: int = 1001, **over: Any) -> dict[str, Any]:
    """A reply as `GET /api/v2/tickets/{id}/conversations` returns it (English agent)."""
    return {"id": id_, "ticket_id": ticket_id, "body": "<div>I have reset your login session.</div>",
            "body_text": "I have reset your login session.", "incoming": False, "private": False,
            "user_id": 61000000002, "source": 0, "category": 2, "attachments": [],
            "created_at": "2025-06-22T15:00:00Z", "updated_at": "2025-06-22T15:00:00Z"} | over


def attachment(id_: int = 9001, **over: Any) -> dict[str, Any]:
    return {"id": id_, "name": "スクリーンショット.png", "content_type": "image/png", "size": 48213,
            "attachment_url": "https://s3.amazonaws.com/fd/9001/shot.png?X-Amz-Signature=abc123&X-Amz-Expires=300",
            "created_at": "2025-06-22T14:30:52Z", "updated_at": "2025-06-22T14:30:52Z"} | over


def msg(value: Any, offset: int = 0, partition: int = 0) -> Message:
    raw = value if isinstance(value, bytes) or value is None else orjson.dumps(value)
    return Message(partition, offset, 1_750_000_000_000, raw)


def run(*messages: Message) -> tuple[dict[str, list[dict[str, Any]]], list]:
    return normalize_messages(TOPIC, messages)


def test_a_korean_ticket_becomes_one_clean_row() -> None:
    tables, dead = run(msg(env("ticket", ticket(), job_id="ingest-job-1")))
    assert dead == [] and set(tables) == set(TABLES)
    row = tables["tickets"][0]
    assert row["key"] == "wedosoft:freshdesk:ticket:1001"
    assert row["version_key"] == "wedosoft:freshdesk:ticket:1001@2025-06-22T15:00:00.000000+00:00"
    assert (row["status"], row["priority"], row["source"]) == ("open", "high", "email")
    assert row["description_text"] == ('안녕하세요,\n오늘 아침부터 로그인할 수 없습니다.\n비밀번호가 맞는데도 "잘못된 '
                                       '자격 증명" 오류가 나옵니다.')
    assert row["source_id"] == "1001" and row["requester_id"] == "60000000001" and row["responder_id"] is None
    assert row["tags"] == ["login", "sso"] and row["job_id"] == "ingest-job-1"
    assert row["created_at"] == datetime(2025, 6, 22, 14, 30, 52, tzinfo=UTC)
    assert row["due_by"].utcoffset().total_seconds() == 0


@pytest.mark.parametrize(("field", "code", "name"), [
    ("status", 2, "open"), ("status", 3, "pending"), ("status", 4, "resolved"), ("status", 5, "closed"),
    ("status", 6, "status_6"), ("priority", 1, "low"), ("priority", 2, "medium"), ("priority", 4, "urgent"),
    ("priority", 9, "priority_9"), ("source", 2, "portal"), ("source", 3, "phone"), ("source", 7, "chat"),
    ("source", 9, "feedback_widget"), ("source", 10, "outbound_email"), ("source", 99, "source_99"),
])
def test_codes_are_named_and_unknown_ones_kept(field: str, code: int, name: str) -> None:
    tables, _ = run(msg(env("ticket", ticket(**{field: code}))))
    assert tables["tickets"][0][field] == name


def test_timestamps_with_offsets_become_utc() -> None:
    tables, _ = run(msg(env("ticket", ticket(created_at="2025-06-22T23:30:52+09:00",
                                               updated_at="2025-06-22T16:00:00.250+01:00"))))
    row = tables["tickets"][0]
    assert row["created_at"] == datetime(2025, 6, 22, 14, 30, 52, tzinfo=UTC)
    assert row["version_key"].endswith("@2025-06-22T15:00:00.250000+00:00")


def test_text_comes_from_the_html_and_falls_back_to_the_platform_text() -> None:
    tables, _ = run(msg([env("ticket", ticket(description="")),
                         env("ticket", ticket(1002, description=None, description_text="  one\r\n\r\ntwo  ")),
                         env("ticket", ticket(1003, tags="billing, vip ,", description_text=None, description=None))]))
    rows = tables["tickets"]
    assert rows[0]["description_text"] == "안녕하세요,\n오늘 아침부터 로그인할 수 없습니다."
    assert rows[1]["description_text"] == "one\ntwo" and rows[2]["description_text"] == ""
    assert rows[2]["tags"] == ["billing", "vip"]


def test_conversations_know_their_author_and_lose_quoted_history() -> None:
    reply = conversation(5002, body='<div>ありがとうございます。直りました。</div><div class="gmail_quote">'
                                    "<blockquote>I have reset your login session.</blockquote></div>",
                         incoming=True, user_id=60000000001)
    note = conversation(5003, body="<p>Escalated to the identity team.</p>", private=True, source=2)
    tables, dead = run(msg([env("conversation", conversation()), env("conversation", reply),
                            env("conversation", note)]))
    assert dead == []
    agent, customer, internal = tables["conversations"]
    assert [agent["author_role"], customer["author_role"], internal["author_role"]] == ["agent", "customer", "note"]
    assert (agent["source"], internal["source"]) == ("reply", "note")
    assert customer["body_stripped"] == "ありがとうございます。直りました。"
    assert "reset your login session" in customer["body_text"]
    assert customer["ticket_key"] == "wedosoft:freshdesk:ticket:1001" and customer["ticket_id"] == "1001"


def test_kb_articles_get_their_folder_and_category_names_from_the_batch() -> None:
    category = {"id": 70000000001, "name": "자주 묻는 질문", "description": "도움말",
                "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}
    folder = {"id": 71000000001, "name": "계정", "category_id": 70000000001, "visibility": 1,
              "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-02T00:00:00Z"}
    article = {"id": 72000000001, "title": "How to fix login problems", "status": 2, "folder_id": 71000000001,
               "category_id": 70000000001, "tags": ["login"], "description": "<h3>Login</h3><ol><li>Reset</li>"
               "<li>Clear cookies</li></ol>", "description_text": "", "created_at": "2025-02-01T00:00:00Z",
               "updated_at": "2025-02-03T00:00:00Z"}
    tables, dead = run(msg([env("kb_category", category), env("kb_folder", folder), env("kb_article", article),
                            env("kb_article", article | {"id": 72000000002, "status": 1, "folder_id": 9})]))
    assert dead == []
    assert tables["kb_folders"][0]["visibility"] == "all_users"
    assert tables["kb_categories"][0]["name"] == "자주 묻는 질문"
    published, draft = tables["kb_articles"]
    assert (published["folder_name"], published["category_name"], published["status"]) == ("계정", "자주 묻는 질문",
                                                                                            "published")
    assert published["description_text"] == "Login\nReset\nClear cookies"
    assert (draft["status"], draft["folder_name"]) == ("draft", None)


def test_attachments_embedded_and_fetched() -> None:
    content = b"time,status\n09:00,error E-4012\n"
    fetched = {"id": 9002, "name": "error-log.txt", "content_type": "text/plain", "size": len(content),
               "created_at": "2025-06-22T15:00:00Z", "updated_at": "2025-06-22T15:00:00Z", "ticket_id": 1001,
               "conversation_id": 5001, "content_b64": base64.b64encode(content).decode(),
               "content_size": len(content), "content_truncated": False}
    tables, dead = run(msg([env("ticket", ticket(attachments=[attachment()])),
                            env("conversation", conversation(attachments=[attachment(9003, name="invoice.pdf")])),
                            env("attachment", fetched)]))
    assert dead == []
    shot, pdf, log = tables["attachments"]
    assert (shot["parent_kind"], shot["parent_id"], shot["ticket_id"]) == ("ticket", "1001", "1001")
    assert shot["attachment_url"] == "https://s3.amazonaws.com/fd/9001/shot.png"  # the signature is a credential
    assert (pdf["parent_kind"], pdf["parent_id"], pdf["ticket_id"]) == ("conversation", "5001", "1001")
    assert log["content_sha256"] == hashlib.sha256(content).hexdigest() and log["content_size"] == len(content)
    assert log["content_text"] == "time,status\n09:00,error E-4012" and shot["content_text"] is None
    assert (log["parent_kind"], log["parent_id"]) == ("conversation", "5001")


def test_an_attachment_too_large_to_fetch_says_why() -> None:
    skipped = attachment(9005, ticket_id=1001, conversation_id=None, content_skipped="over 1048576 bytes",
                         content_size=24_000_000)
    row = run(msg(env("attachment", skipped)))[0]["attachments"][0]
    assert (row["parent_kind"], row["parent_id"]) == ("ticket", "1001")
    assert row["content_skipped"] == "over 1048576 bytes" and row["content_sha256"] is None
    assert row["content_text"] is None


def test_secrets_never_reach_a_row_or_a_dead_letter() -> None:
    record = ticket(api_key="fd-KEY-123", password="hunter2", custom_fields={"cf_product": "POS",
                    "cf_api_token": "tok-SECRET", "nested": {"client_secret": "sh-SECRET"}})
    bad = env("ticket", ticket(1002, updated_at="soon", api_key="fd-KEY-123"))
    tables, dead = run(msg([env("ticket", record), bad]), msg(env("ticket", {"id": 3, "password": "hunter2"})))
    dumped = orjson.dumps(tables, option=orjson.OPT_NON_STR_KEYS) + b"".join(d.to_json() for d in dead)
    dumped += b"".join(d.value or b"" for d in dead)
    assert tables["tickets"][0]["custom_fields"] == {"cf_product": "POS", "nested": {}}
    assert len(dead) == 2
    for secret in (b"fd-KEY-123", b"hunter2", b"tok-SECRET", b"sh-SECRET"):
        assert secret not in dumped


BAD_INPUTS = [
    (b"{not json", "not JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (None, "empty message"),
    (b"42", "JSON int is not a record envelope"),
    (orjson.dumps(env("sla_policy", {"id": 1})), "unknown kind 'sla_policy'"),
    (orjson.dumps(env("ticket", ticket()) | {"platform": "zendesk"}), "platform: Input should be 'freshdesk'"),
    (orjson.dumps({k: v for k, v in env("ticket", ticket()).items() if k != "tenant"}), "tenant: Field required"),
    (orjson.dumps(env("ticket", ticket(id=None))), "ticket record: missing id"),
    (orjson.dumps(env("ticket", ticket(updated_at="22/06/2025 14:30"))), "ticket 1001: updated_at '22/06/2025"),
    (orjson.dumps(env("ticket", {k: v for k, v in ticket().items() if k != "updated_at"})),
     "ticket 1001: missing updated_at"),
    (orjson.dumps(env("ticket", ticket(status="open"))), "ticket 1001: status 'open' is not an integer code"),
    (orjson.dumps(env("ticket", ticket(tags=[1, 2]))), "ticket 1001: tags is not a list of strings"),
    (orjson.dumps(env("conversation", conversation(ticket_id=None))), "conversation 5001: missing ticket_id"),
    (orjson.dumps(env("kb_article", {"id": 7, "title": "x", "updated_at": 1750000000})),
     "kb_article 7: updated_at 1750000000 is not an ISO 8601 timestamp"),
    (orjson.dumps(env("attachment", attachment(content_b64="@@not base64@@"))),
     "attachment 9001: content_b64 is not base64"),
]


@pytest.mark.parametrize(("value", "reason"), BAD_INPUTS)
def test_each_bad_input_is_a_dead_letter_and_its_neighbours_survive(value: bytes | None, reason: str) -> None:
    tables, dead = run(msg(env("ticket", ticket(1)), 10), Message(3, 11, 0, value),
                       msg(env("ticket", ticket(2)), 12))
    assert [d.error for d in dead if reason in d.error] == [dead[0].error] and len(dead) == 1, dead
    assert (dead[0].topic, dead[0].partition, dead[0].offset, dead[0].index) == (TOPIC, 3, 11, None)
    assert [r["source_id"] for r in tables["tickets"]] == ["1", "2"]


def test_bad_elements_of_a_batch_carry_their_index() -> None:
    batch = [env("ticket", ticket(1)), "not an object", env("ticket", ticket(2, created_at="yesterday")),
             env("conversation", conversation())]
    tables, dead = run(msg(batch, offset=77))
    assert [(d.offset, d.index) for d in dead] == [(77, 1), (77, 2)]
    assert "ticket 2: created_at 'yesterday'" in dead[1].error
    assert orjson.loads(dead[1].value)["record"]["id"] == 2  # the element alone, not the whole batch
    assert len(tables["tickets"]) == 1 and len(tables["conversations"]) == 1


def test_a_bad_embedded_attachment_is_rejected_alone() -> None:
    record = ticket(attachments=[attachment(), {"name": "no-id.png"}, attachment(9004, size=-5)])
    tables, dead = run(msg(env("ticket", record)))
    assert [r["source_id"] for r in tables["tickets"]] == ["1001"]
    assert [r["source_id"] for r in tables["attachments"]] == ["9001"]
    assert [d.error for d in dead] == ["ticket 1001 attachments[1]: missing id",
                                       "ticket 1001 attachment 9004: size -5 is not a non-negative integer"]


def test_rows_validate_again_as_models() -> None:
    tables, _ = run(msg([env("ticket", ticket()), env("conversation", conversation())]))
    assert Ticket.model_validate(tables["tickets"][0]).model_dump() == tables["tickets"][0]
    assert Conversation.model_validate(tables["conversations"][0]).key == "wedosoft:freshdesk:conversation:5001"


def test_the_same_version_twice_is_one_row_and_newer_versions_win() -> None:
    v1 = env("ticket", ticket(status=2))
    v2 = env("ticket", ticket(status=4, updated_at="2025-06-23T09:00:00Z"))
    tables, _ = run(msg(v1, 1), msg(v1, 2), msg(v2, 3), msg(v1, 4), msg(env("ticket", ticket(7)), 5))
    latest = latest_per_key(tables["tickets"])
    assert [(r["source_id"], r["status"]) for r in latest] == [("1001", "resolved"), ("7", "open")]
    assert len({r["version_key"] for r in tables["tickets"]}) == 3


def test_ties_keep_the_last_and_fetched_content_outranks_metadata() -> None:
    first, second = [run(msg(env("ticket", ticket(subject=s))))[0]["tickets"][0] for s in ("old", "edited")]
    assert latest_per_key([first, second])[0]["subject"] == "edited"
    meta = run(msg(env("attachment", attachment())))[0]["attachments"][0]
    content = run(msg(env("attachment", attachment(content_b64=base64.b64encode(b"\x89PNG").decode()))))[0]
    fetched = content["attachments"][0]
    assert latest_per_key([fetched, meta]) == [fetched] and latest_per_key([meta, fetched]) == [fetched]
    assert supersedes(fetched, meta) and not supersedes(meta, fetched) and not supersedes(meta, meta)
    assert fetched["version_key"] != meta["version_key"]


def test_version_key_survives_a_json_round_trip() -> None:
    row = run(msg(env("ticket", ticket(updated_at="2025-06-22T17:00:00+02:00"))))[0]["tickets"][0]
    wire = orjson.loads(orjson.dumps(row))
    assert version_key(row) == version_key(wire) == row["version_key"]
    assert latest_per_key([wire, row]) == [row]


def test_a_processed_attachment_completing_its_metadata_is_not_a_duplicate_but_a_replay_is(materializer) -> None:
    """What `/ingest/metrics` reports as duplicate_rate: a first run with attachments processed showed 24.8 %."""
    from aiokafka import TopicPartition
    from aiokafka.structs import ConsumerRecord

    meta = run(msg(env("attachment", attachment())))[0]
    fetched = run(msg(env("attachment", attachment(content_b64=base64.b64encode(b"\x89PNG").decode()))))[0]
    value = orjson.dumps({"tables": {"attachments": meta["attachments"] + fetched["attachments"]}})
    m = materializer
    con = m.con
    tp = TopicPartition("tickets.normalized", 0)
    dupes = lambda: con.cursor().execute("SELECT coalesce(sum(duplicates), 0) FROM ingest_duplicates").fetchone()[0]  # noqa: E731
    m._write({tp: [ConsumerRecord(tp.topic, 0, 0, 0, 0, None, value, None, 0, 0, [])]})
    assert dupes() == 0 and con.cursor().execute("SELECT content_sha256 IS NOT NULL FROM attachments").fetchall() == [
        (True,)]
    m._write({tp: [ConsumerRecord(tp.topic, 0, 1, 0, 0, None, value, None, 0, 0, [])]})  # the same again
    assert dupes() == 1  # the processed copy was stored already (its metadata twin still is no duplicate)
