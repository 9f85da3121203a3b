"""HTML bodies as Freshdesk returns them -> the text an agent reads, with and without the quoted history."""

from __future__ import annotations

import pytest

from pipeline.tickets.html import html_to_text, html_to_texts, normalize_text, strip_quoted_text
from simulators.freshdesk.fixtures import Dataset

GMAIL_REPLY_EN = (
    '<div dir="ltr">Thanks, exporting works again after the update.<br><br>Jane</div><br>'
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Sun, Jun 22, 2025 at 2:30\u202fPM Acme Support '
    '&lt;support@acme.freshdesk.com&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0 0 0 .8ex">'
    "<div>Could you tell us which browser you use?</div></blockquote></div>")
GMAIL_REPLY_KO = (
    "<div>확인해 주셔서 감사합니다. 이제 정상적으로 로그인됩니다.</div><br>"
    '<div class="gmail_quote gmail_quote_container"><div class="gmail_attr">2025년 6월 22일 (일) 오후 2:30, '
    "Acme 지원팀 &lt;support@acme.freshdesk.com&gt;님이 작성:<br></div>"
    "<blockquote><div>로그인 세션을 초기화했습니다.</div></blockquote></div>")
OUTLOOK_REPLY = (
    "<html><head><style>p.MsoNormal{margin:0cm}</style></head><body><div>請求書のエクスポートが直りました。</div>"
    '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
    '<div id="divRplyFwdMsg" dir="ltr"><b>差出人:</b> Acme サポート<br><b>送信日時:</b> 2025年6月22日 14:30</div>'
    "<div>以前のメッセージ本文</div> 署名の後ろの古い文</body></html>")


def test_script_style_and_comments_never_reach_the_text() -> None:
    html = ("<div><style>.x{color:red}</style><script>var token='TOPSECRET';</script><!-- hidden note -->"
            "<noscript>enable js</noscript><p>Visible</p><svg><text>chart</text></svg></div>")
    texts = html_to_texts(html)
    assert texts.full == texts.stripped == "Visible"
    assert "TOPSECRET" not in texts.full and "color" not in texts.full and "hidden" not in texts.full


def test_entities_are_decoded_and_nbsp_is_a_space() -> None:
    html = "<p>R&amp;D &lt;team&gt; can&#39;t&nbsp;log&nbsp;in &mdash; &#54620;&#xAD6D;&#50612; &copy;</p>"
    assert html_to_text(html) == "R&D <team> can't log in — 한국어 ©"


def test_blocks_become_lines_and_whitespace_collapses() -> None:
    html = ("<div>Hi team,<br>the export\n      fails   since Monday.</div><p>Steps:</p>"
            "<ul><li>Open <b>Reports</b></li><li>Click\tExport</li></ul><p></p><p>  </p><div><div>Jane</div></div>")
    assert html_to_text(html) == "Hi team,\nthe export fails since Monday.\nSteps:\nOpen Reports\nClick Export\nJane"


def test_tables_keep_cells_apart_and_pre_keeps_its_lines() -> None:
    html = ("<table><tr><th>Order</th><th>Amount</th></tr><tr><td>A-12345</td><td>$120.00</td></tr></table>"
            "<pre>ERROR 500\n  at export()</pre>")
    assert html_to_text(html) == "Order Amount\nA-12345 $120.00\nERROR 500\nat export()"


def test_broken_and_empty_html_do_not_raise() -> None:
    assert html_to_text(None) == "" and html_to_text("") == "" and html_to_text("   ") == ""
    assert html_to_text("<div><p>unclosed <b>bold<li>item") == "unclosed bold\nitem"
    assert html_to_text("plain text, no tags") == "plain text, no tags"


@pytest.mark.parametrize(("html", "reply", "quoted"), [
    (GMAIL_REPLY_EN, "Thanks, exporting works again after the update.\nJane", "which browser"),
    (GMAIL_REPLY_KO, "확인해 주셔서 감사합니다. 이제 정상적으로 로그인됩니다.", "세션을 초기화"),
    (OUTLOOK_REPLY, "請求書のエクスポートが直りました。", "以前のメッセージ"),
    ('<p>Done, thanks!</p><div class="freshdesk_quote"><blockquote class="freshdesk_quote">Earlier: <p>Is it fixed?'
     "</p></blockquote></div>", "Done, thanks!", "Is it fixed"),
    ("<p>Still broken.</p><p>-----Original Message-----<br>From: Acme Support<br>Sent: Monday</p><p>old</p>",
     "Still broken.", "old"),
    ('<p>Works.</p><div style="border-top:solid #E1E1E1 1.0pt"><p><b>From:</b> Acme Support</p>'
     "<p><b>Sent:</b> Monday, June 23, 2025 9:00 AM</p><p>Please try again.</p></div>", "Works.", "try again"),
    ("<p>今朝から直りました。</p><p>2025年6月22日(日) 14:30 Acme Support &lt;support@acme.freshdesk.com&gt;:</p>"
     "<p>&gt; 再度お試しください。</p>", "今朝から直りました。", "再度"),
])
def test_quoted_history_is_stripped_but_kept_in_the_full_text(html: str, reply: str, quoted: str) -> None:
    texts = html_to_texts(html)
    assert texts.stripped == reply
    assert quoted in texts.full and quoted not in texts.stripped
    assert html_to_text(html, strip_quotes=True) == reply and html_to_text(html) == texts.full


def test_nested_and_overlapping_removals_are_safe() -> None:
    html = ('<p>Reply on top.</p><div class="gmail_quote"><blockquote><div id="divRplyFwdMsg">From: x</div>'
            "<div>older</div><pre><blockquote>q</blockquote></pre></blockquote></div>"
            "<template><pre>t</pre><div id=\"appendonsend\"></div></template><noscript><svg><style>s</style></svg>"
            "</noscript><pre>log <blockquote>in pre</blockquote></pre>")
    for _ in range(200):  # a use-after-free in the parser would crash or corrupt the text
        texts = html_to_texts(html)
    assert texts.stripped == "Reply on top.\nlog\nin pre"  # a quote inside <pre> is kept with the pre
    assert "older" in texts.full and "t" not in texts.full.split("\n")


def test_plain_text_history_markers_over_two_lines_and_quoted_lines() -> None:
    text = ("Fixed now.\n> old quoted line\nStill one question about VAT.\n"
            "On Mon, Jun 23, 2025 at 9:00 AM Acme Support <support@acme.freshdesk.com>\nwrote:\nprevious")
    assert strip_quoted_text(text) == "Fixed now.\nStill one question about VAT."
    assert strip_quoted_text("Hi\nOn the dashboard nothing loads.\nThanks") == (
        "Hi\nOn the dashboard nothing loads.\nThanks")  # an ordinary line starting with "On" stays


def test_normalize_text_gives_plain_text_the_same_shape() -> None:
    assert normalize_text("  Hi\u00a0team,\r\n\r\n  line   two \n") == "Hi team,\nline two"
    assert normalize_text(None) == ""


def test_text_matches_what_the_simulator_says_a_reader_sees() -> None:
    dataset = Dataset(tickets=40, seed=5, kb_articles=9)
    pairs = [(t.record["description"], t.record["description_text"]) for t in dataset.tickets.values()]
    pairs += [(c.record["body"], c.record["body_text"]) for t in dataset.tickets.values() for c in t.conversations]
    pairs += [(a["description"], a["description_text"]) for arts in dataset.kb.articles.values() for a in arts]
    assert len(pairs) > 80
    assert [html_to_text(h) for h, _ in pairs] == [normalize_text(t) for _, t in pairs]
