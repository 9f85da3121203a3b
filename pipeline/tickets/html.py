"""Helpdesk HTML -> the text a reader sees, and the same text without the quoted reply history.

selectolax (the lexbor engine) parses; block elements are marked with a separator character before lexbor
concatenates the text in C, so the Python work per document stays a handful of calls (measured against
inscriptis and html2text, see the tickets report).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from selectolax.lexbor import LexborHTMLParser, LexborNode

_BREAK = "\x1e"  # marks a block boundary; never survives into the output
_INVISIBLE = frozenset({"script", "style", "noscript", "template", "head", "title", "iframe", "object", "svg",
                        "canvas", "-comment"})
_BLOCKS = frozenset({"p", "div", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "thead", "tbody", "h1", "h2",
                     "h3", "h4", "h5", "h6", "blockquote", "section", "article", "header", "footer", "aside", "nav",
                     "address", "figure", "figcaption", "hr", "form", "fieldset", "center"})
_CELLS = frozenset({"td", "th"})
# Containers mail clients wrap around the message being replied to (Gmail, Freshdesk, Yahoo, Thunderbird).
_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_extra", "freshdesk_quote", "yahoo_quoted", "moz-cite-prefix",
                            "OutlookMessageHeader"})
# Outlook (web and new desktop) puts a header div before the old message, which follows it as siblings.
_CUT_IDS = frozenset({"divRplyFwdMsg", "appendonsend", "mail-editor-reference-message-container"})
_SPACES = re.compile(r"[ \t\n\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000\ufeff]+")

_BREAKS = re.compile(" ?\x1e[\x1e ]*")
_SEPARATOR = re.compile(
    r"^-{2,}\s*(original message|forwarded message|원본 메시지|원본 메일|전달된 메시지|元のメッセージ|"
    r"転送されたメッセージ|オリジナルメッセージ)\s*-{2,}$", re.IGNORECASE)
_WROTE = re.compile(
    r"(^on\s.+\swrote:$)|(님이 작성:$)|(님이 작성했습니다:$)|(書きました[:：]$)|"
    r"(^\d{4}年\d{1,2}月\d{1,2}日.*<[^<>@\s]+@[^<>\s]+>[:：]?$)|(^\d{4}년 \d{1,2}월 \d{1,2}일.*<[^<>@\s]+@[^<>\s]+>:$)",
    re.IGNORECASE)
_HEADER_FROM = re.compile(r"^(from|보낸 사람|差出人|送信者)\s*[:：]", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^(sent|date|보낸 날짜|날짜|送信日時|日付|日時)\s*[:：]", re.IGNORECASE)


class HtmlText(NamedTuple):
    """One HTML body as text: `full` is all of it, `stripped` is without the quoted reply history."""

    full: str
    stripped: str


def html_to_text(html: str | None, *, strip_quotes: bool = False) -> str:
    """HTML -> clean text: invisible parts dropped, entities decoded, one line per block, spaces collapsed."""
    texts = html_to_texts(html)
    return texts.stripped if strip_quotes else texts.full


def html_to_texts(html: str | None) -> HtmlText:
    """Both texts of one body from a single parse."""
    if not html or not html.strip():
        return HtmlText("", "")
    tree = LexborHTMLParser(html)
    root = tree.body or tree.root
    if root is None:
        return HtmlText("", "")
    quotes, cut = _prepare(root)
    full = _lines(root.text())
    for node in quotes:
        node.decompose()
    if cut is not None:
        _cut_from(cut)
    return HtmlText(full, strip_quoted_text(_lines(root.text())))


def normalize_text(text: str | None) -> str:
    """Plain text (a platform's `*_text`) in the same shape as converted HTML: trimmed lines, no blank ones."""
    return _lines(text.replace("\r\n", _BREAK).replace("\n", _BREAK)) if text else ""


def strip_quoted_text(text: str) -> str:
    """Cut text at the first reply-history marker ("On … wrote:", "-----Original Message-----", "님이 작성:"…)."""
    lines = text.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _starts_history(lines, i):
            break
        if not line.startswith(">"):
            kept.append(line)
    return "\n".join(kept).strip()


def _starts_history(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _SEPARATOR.match(line) or _WROTE.search(line):
        return True
    if i + 1 < len(lines) and line.lower().startswith("on ") and _WROTE.search(f"{line} {lines[i + 1]}"):
        return True  # Gmail wraps a long "On <date>, <name> <address> wrote:" over two lines
    return bool(_HEADER_FROM.match(line)) and any(_HEADER_SENT.match(n) for n in lines[i + 1:i + 4])


def _prepare(root: LexborNode) -> tuple[list[LexborNode], LexborNode | None]:
    """One walk (selectolax's css() compiles its selector on every call): drop the invisible, mark the blocks,
    and find the quoted-history containers and the Outlook reply header."""
    invisible: list[LexborNode] = []
    quotes: list[LexborNode] = []
    pres: list[LexborNode] = []
    cuts: list[LexborNode] = []
    for node in root.traverse(include_text=False):
        tag = node.tag
        if tag in _INVISIBLE:
            invisible.append(node)
        elif tag in _BLOCKS:
            node.insert_before(_BREAK)
            node.insert_after(_BREAK)
            attrs = node.attributes
            if tag == "blockquote" or not _QUOTE_CLASSES.isdisjoint((attrs.get("class") or "").split()):
                quotes.append(node)
            elif attrs.get("id") in _CUT_IDS:
                cuts.append(node)
        elif tag == "br":
            node.insert_after(_BREAK)
        elif tag in _CELLS:
            node.insert_before(" ")
        elif tag == "pre":
            pres.append(node)
    # A node freed with its ancestor must not be touched again (lexbor would crash): keep only outer ones.
    invisible = _outermost(invisible, set())
    pres = _outermost(pres, _ids(invisible))
    quotes = _outermost(quotes, _ids(invisible) | _ids(pres))
    cut = next(iter(_outermost(cuts, _ids(invisible) | _ids(pres) | _ids(quotes))), None)
    for node in invisible:
        node.decompose()
    for node in pres:
        node.replace_with(_BREAK + node.text().replace("\n", _BREAK) + _BREAK)
    return quotes, cut


def _ids(nodes: list[LexborNode]) -> set[int]:
    return {node.mem_id for node in nodes}


def _outermost(nodes: list[LexborNode], removed: set[int]) -> list[LexborNode]:
    """The nodes not nested in another of them, nor in a node about to be removed."""
    if not nodes:
        return nodes
    ids = _ids(nodes) | removed
    kept = []
    for node in nodes:
        parent = node.parent
        while parent is not None and parent.mem_id not in ids:
            parent = parent.parent
        if parent is None:
            kept.append(node)
    return kept


def _cut_from(marker: LexborNode) -> None:
    """Remove the marker and everything after it in document order."""
    node: LexborNode | None = marker
    while node is not None and node.tag not in ("body", "html"):
        sibling = node.next
        while sibling is not None:
            following = sibling.next
            sibling.decompose()
            sibling = following
        node = node.parent
    marker.decompose()


def _lines(text: str) -> str:
    return _BREAKS.sub("\n", _SPACES.sub(" ", text)).strip(" \n")
