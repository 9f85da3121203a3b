"""Extractive thread summaries and integrated objects: the problem first, in order, deterministic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.broker.records import Message
from pipeline.tickets.normalize import normalize_messages
from pipeline.tickets.sentences import is_boilerplate, split_sentences
from pipeline.tickets.summarize import integrate, integrate_article, summarize
from schemas.tickets import Attachment, Conversation, KbArticle, Ticket

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "Since the 2.4 update every CSV export of our invoices fails with error E-4012 after about 30 seconds."
QUOTE = ('<div class="gmail_quote"><div class="gmail_attr">On Mon, Jun 23, 2025 at 9:00 AM Acme Support '
         "&lt;support@acme.freshdesk.com&gt; wrote:</div><blockquote>Could you send us the export log?</blockquote>"
         "</div>")
EN_THREAD = [  # (role, html): the customer's problem, then a long back-and-forth with quoted history
    ("agent", "<p>Hi Jane,</p><p>Thanks for reaching out. Could you tell us which browser you use and send the "
              "export log?</p><p>Best regards,<br>Liam</p>"),
    ("customer", "<p>Hi Liam,</p><p>We use Chrome 126 on Windows. The export log is attached.</p><p>Thanks,<br>Jane"
                 "</p>" + QUOTE),
    ("note", "<p>Log shows the export worker timing out on invoices with more than 5,000 lines.</p>"),
    ("agent", "<p>Hi Jane,</p><p>Our engineers found the cause: large invoice exports hit a 30 second timeout.</p>"
              "<p>Best regards,<br>Liam</p>" + QUOTE),
    ("customer", "<p>Any news? Our accountants need the export for the month-end close.</p><p>Thanks,<br>Jane</p>"),
    ("agent", "<p>Hi Jane,</p><p>We are deploying a fix this week.</p><p>Best regards,<br>Liam</p>"),
    ("customer", "<p>Thanks for the update, we will wait.</p><p>Jane</p>" + QUOTE),
    ("note", "<p>Fix deployed in 2.4.1, timeout raised to 5 minutes.</p>"),
    ("agent", "<p>Hi Jane,</p><p>The fix for large invoice exports is live in version 2.4.1. Please try the export "
              "again.</p><p>Best regards,<br>Liam</p>"),
    ("customer", "<p>It works now, thank you!</p><p>Jane</p>" + QUOTE),
    ("agent", "<p>Hi Jane,</p><p>Great to hear that the CSV export works again. I am closing this ticket.</p>"
              "<p>Best regards,<br>Liam</p>"),
]


def _rows(records: list[tuple[str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    value = orjson.dumps([{"tenant": "acme", "platform": "freshdesk", "domain": "acme.freshdesk.com", "kind": k,
                           "record": r} for k, r in records])
    tables, dead = normalize_messages("tickets.raw", [Message(0, 0, 0, value)])
    assert dead == []
    return tables


def make_thread(subject: str, description: str, messages: list[tuple[str, str]], status: int = 5,
                attachments: list[dict[str, Any]] | None = None) -> tuple[Ticket, list[Conversation], list[Attachment]]:
    ticket = {"id": 42, "subject": subject, "description": description, "status": status, "priority": 2,
              "source": 1, "tags": ["export"], "attachments": attachments or [], "created_at": "2025-06-22T08:00:00Z",
              "updated_at": f"2025-06-{23 + len(messages) // 24:02d}T{len(messages) % 24:02d}:30:00Z"}
    records = [("ticket", ticket)]
    for n, (role, body) in enumerate(messages):
        records.append(("conversation", {
            "id": 500 + n, "ticket_id": 42, "body": body, "incoming": role == "customer", "private": role == "note",
            "user_id": 7 if role == "customer" else 9, "source": 2 if role == "note" else 0,
            "created_at": f"2025-06-{22 + (n + 9) // 24:02d}T{(n + 9) % 24:02d}:00:00Z",
            "updated_at": f"2025-06-{22 + (n + 9) // 24:02d}T{(n + 9) % 24:02d}:00:00Z"}))
    tables = _rows(records)
    return (Ticket.model_validate(tables["tickets"][0]),
            [Conversation.model_validate(c) for c in tables["conversations"]],
            [Attachment.model_validate(a) for a in tables["attachments"]])


def english_thread(status: int = 5) -> tuple[Ticket, list[Conversation], list[Attachment]]:
    description = (f"<div><p>Hello support team,</p><p>{PROBLEM}</p><p>We tried Chrome and Firefox.</p>"
                   "<p>Thanks &amp; best regards,<br>Jane Doe</p></div>")
    return make_thread("CSV export of invoices fails", description, EN_THREAD, status)


@pytest.mark.parametrize(("text", "sentences"), [
    ("Hi team,\nThe export fails, e.g. for invoice A-1. Mr. Kim saw it too! Price is $12.50. Why?",
     ["Hi team,", "The export fails, e.g. for invoice A-1.", "Mr. Kim saw it too!", "Price is $12.50.", "Why?"]),
    ("오늘 아침부터 로그인할 수 없습니다. 비밀번호가 맞는데도 오류가 나옵니다.다시 시도해도 같습니다\n감사합니다.",
     ["오늘 아침부터 로그인할 수 없습니다.", "비밀번호가 맞는데도 오류가 나옵니다.", "다시 시도해도 같습니다",
      "감사합니다."]),
    ("今朝からログインできません。パスワードは正しいのに「認証情報が無効です」と表示されます。本当ですか？はい",
     ["今朝からログインできません。", "パスワードは正しいのに「認証情報が無効です」と表示されます。",
      "本当ですか？", "はい"]),
])
def test_sentences_split_in_three_languages(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


@pytest.mark.parametrize("line", ["Hi Jane,", "Best regards,", "Thanks & best regards,", "안녕하세요,", "감사합니다.",
                                  "김민준 드림", "お世話になっております。", "よろしくお願いいたします。", "Liam"])
def test_greetings_and_sign_offs_are_boilerplate(line: str) -> None:
    assert is_boilerplate(line)


def test_a_long_thread_summary_has_the_problem_in_original_order_within_budget() -> None:
    ticket, convs, _ = english_thread()
    summary = summarize(ticket, convs, n=3, max_chars=400)
    assert PROBLEM in summary.sentences
    assert 1 <= len(summary.sentences) <= 3 and len(summary.summary) <= 400
    thread_text = "\n".join([ticket.description_text, *(c.body_stripped for c in convs)])
    positions = [thread_text.index(s) for s in summary.sentences]
    assert positions == sorted(positions)
    assert not any(is_boilerplate(s) for s in summary.sentences)
    assert "Could you send us the export log?" not in summary.summary  # quoted history is not the thread
    assert (summary.subject, summary.status, summary.ticket_key) == ("CSV export of invoices fails", "closed",
                                                                    "acme:freshdesk:ticket:42")


def test_resolution_is_the_latest_agent_replys_first_real_sentence() -> None:
    ticket, convs, _ = english_thread(status=4)
    assert summarize(ticket, convs).resolution == "Great to hear that the CSV export works again."
    open_ticket, convs, _ = english_thread(status=2)
    assert summarize(open_ticket, convs).resolution is None


@pytest.mark.parametrize(("subject", "description", "problem", "reply"), [
    ("로그인이 되지 않습니다", "<p>안녕하세요,</p><p>오늘 아침부터 Streamdesk Cloud에 로그인할 수 없습니다. "
     "비밀번호가 맞는데도 &quot;잘못된 자격 증명&quot; 오류가 나옵니다.</p><p>감사합니다.<br>김민준 드림</p>",
     "오늘 아침부터 Streamdesk Cloud에 로그인할 수 없습니다.",
     "<p>안녕하세요 고객님,</p><p>로그인 실패가 반복되어 계정이 잠겨 있었습니다. 지금은 잠금이 해제되었습니다.</p>"),
    ("請求書が二重に届きました", "<p>お世話になっております。</p><p>同じサブスクリプションで請求書が二重に"
     "発行され、カードに二回請求されました。注文番号はA-12345です。</p><p>よろしくお願いいたします。<br>佐藤 花子</p>",
     "同じサブスクリプションで請求書が二重に発行され、カードに二回請求されました。",
     "<p>お問い合わせいただきありがとうございます。</p><p>二重請求は取り消しました。5営業日以内に明細から消えます。</p>"),
])
def test_korean_and_japanese_threads(subject: str, description: str, problem: str, reply: str) -> None:
    ticket, convs, _ = make_thread(subject, description, [("agent", reply)], status=4)
    summary = summarize(ticket, convs, n=2)
    assert summary.sentences[0] == problem
    assert summary.resolution is not None and summary.resolution in reply and not is_boilerplate(summary.resolution)


def test_a_tiny_budget_cuts_the_best_sentence() -> None:
    ticket, convs, _ = english_thread()
    summary = summarize(ticket, convs, max_chars=30)
    assert summary.sentences == [PROBLEM[:29].rstrip() + "…"]  # not a weak sentence that happens to fit


def test_the_summary_is_deterministic_across_runs_and_hash_seeds() -> None:
    ticket, convs, _ = english_thread()
    first = summarize(ticket, convs)
    assert summarize(ticket, list(reversed(convs))) == first  # thread order comes from the data, not the input
    code = ("import sys; sys.path.insert(0, 'tests/unit'); import test_tickets_summarize as t; "
            "from pipeline.tickets.summarize import summarize; tk, cs, _ = t.english_thread(); "
            "print(summarize(tk, cs).model_dump_json())")
    env = os.environ | {"PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == first.model_dump_json()


def test_integrate_merges_the_thread_in_order_with_attachment_names() -> None:
    shot = {"id": 9001, "name": "screenshot.png", "content_type": "image/png", "size": 100,
            "created_at": "2025-06-22T08:00:00Z", "updated_at": "2025-06-22T08:00:00Z"}
    ticket, convs, atts = english_thread()
    ticket, convs, atts = make_thread(ticket.subject, "<p>" + PROBLEM + "</p>", EN_THREAD[:3], attachments=[shot])
    log = Attachment.model_validate(atts[0].model_dump() | {"source_id": "9002", "name": "export.log",
                                    "parent_kind": "conversation", "parent_id": convs[1].source_id,
                                    "content_text": "E-4012 timeout after 30000 ms"})
    fetched_copy = Attachment.model_validate(atts[0].model_dump() | {"content_sha256": "a" * 64})
    doc = integrate(ticket, list(reversed(convs)), [*atts, log, fetched_copy])
    assert doc.key == ticket.key and doc.object_type == "ticket" and doc.conversation_count == 3
    order = [PROBLEM, "Attachment: screenshot.png", "Could you tell us which browser", "We use Chrome 126",
             "Attachment: export.log\nE-4012 timeout", "Log shows the export worker"]
    assert [doc.text.index(part) for part in order] == sorted(doc.text.index(part) for part in order)
    assert doc.text.startswith("CSV export of invoices fails\n") and "Could you send us the export log" not in doc.text
    assert doc.attachment_names == ["screenshot.png", "export.log"]  # the fetched copy is the same file
    assert doc.summary and PROBLEM in doc.summary
    assert doc.updated_at == max(c.updated_at for c in [ticket, *convs])
    private_free = integrate(ticket, convs, atts, include_private=False)
    assert private_free.conversation_count == 2 and "Log shows" not in private_free.text


def test_integrate_article() -> None:
    tables = _rows([("kb_category", {"id": 1, "name": "FAQ", "updated_at": "2025-01-01T00:00:00Z"}),
                    ("kb_folder", {"id": 2, "name": "Billing", "category_id": 1, "updated_at": "2025-01-01T00:00:00Z"}),
                    ("kb_article", {"id": 3, "title": "Understanding your invoice", "status": 2, "folder_id": 2,
                                    "category_id": 1, "description": "<p>Invoices list each seat, the billing period "
                                    "and taxes.</p><p>A corrected invoice can be requested from Billing settings.</p>",
                                    "updated_at": "2025-02-01T00:00:00Z", "tags": ["billing"]})])
    doc = integrate_article(KbArticle.model_validate(tables["kb_articles"][0]))
    assert doc.key == "acme:freshdesk:kb_article:3" and doc.status == "published"
    assert doc.text.splitlines()[:2] == ["Understanding your invoice", "FAQ / Billing"]
    assert doc.summary and "Invoices list each seat" in doc.summary


def test_an_edited_reply_replaces_its_old_version_whatever_the_input_order() -> None:
    ticket, convs, _ = english_thread()
    last = convs[-1]
    edited = Conversation.model_validate(last.model_dump() | {
        "body_stripped": "The CSV export is fixed in version 2.4.1 for every invoice size.",
        "updated_at": last.updated_at.replace(year=2026)})
    for given in ([*convs, edited], [edited, *convs]):
        doc = integrate(ticket, given, [])
        assert "fixed in version 2.4.1 for every invoice size" in doc.text
        assert "Great to hear" not in doc.text and doc.conversation_count == len(convs)
        assert summarize(ticket, given).resolution == "The CSV export is fixed in version 2.4.1 for every invoice size."
