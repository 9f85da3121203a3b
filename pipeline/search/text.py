"""Keyword tokens for Korean, Japanese and Latin-script text, and highlighted snippets built from the same tokens.

Korean and Japanese are written without spaces between the words a user searches for (`비밀번호를`, `パスワード再設定`),
so a run of Hangul, kana or CJK ideographs becomes overlapping character bigrams (`비밀 밀번 번호 호를`): a query
`비밀번호` (`비밀 밀번 번호`) then matches inside the longer word, with no dictionary. A run of one character stays a
unigram. Everything else is split into letter/digit words. Each token is NFKC-normalised (full-width Ａ→a,
half-width ｶ→カ) and lower-cased. One tokenizer serves the index, the query and the highlighting, so a term that
matched is a term that is marked.

A query drops English function words (`STOPWORDS`, Lucene's list plus pronouns and auxiliaries) unless nothing
else is left: fused by rank, a document whose only match is "my" or "was" would otherwise rank first on the
keyword side and outvote a document that means the query. Documents keep every token.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator

# Hangul jamo and syllables, kana (without the ・ separator), CJK ideographs and compatibility forms, half-width kana.
_CJK = "\u1100-\u11ff\u3005\u3041-\u30fa\u30fc-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff" \
       "\uac00-\ud7a3\uf900-\ufaff\uff66-\uff9f"
_TOKEN = re.compile(f"([{_CJK}]+)|([^\\W_{_CJK}]+)")
MAX_WORD = 40  # longer "words" are ids, hashes or base64: noise for BM25
MAX_QUERY_TERMS = 64  # a pasted paragraph must not become a 500-clause query
SNIPPET_CHARS = 200
_SCAN_CHARS = 20_000  # a snippet is looked for in the first 20k characters only


STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with i me my mine we our ours you your yours he him his she her hers its us them do does did "
    "done have has had having am were been being can could would should shall may might must t s d ll m re ve don "
    "doesn didn isn wasn aren weren won what which who whom when where why how all any some so than too very just "
    "from about after before up down out over again also only own same here".split()
)


def _norm(token: str) -> str:
    return token.lower() if token.isascii() else unicodedata.normalize("NFKC", token).lower()


def tokens(text: str) -> list[str]:
    """The keyword tokens of a text, in order, repeats kept (BM25 counts them).

    The whole text is normalised at once here (`spans` normalises token by token to keep offsets); the two agree
    but for characters whose NFKC form changes script, such as ① or ㈱.
    """
    text = (text if text.isascii() else unicodedata.normalize("NFKC", text)).lower()
    out: list[str] = []
    for cjk, word in _TOKEN.findall(text):
        if word:
            if len(word) <= MAX_WORD:
                out.append(word)
        elif len(cjk) == 1:
            out.append(cjk)
        else:
            out.extend(map(str.__add__, cjk[:-1], cjk[1:]))
    return out


def query_terms(query: str) -> list[str]:
    """The distinct tokens of a query, first occurrence first, stop words dropped unless they are all there is."""
    distinct = list(dict.fromkeys(tokens(query)))
    return ([t for t in distinct if t not in STOPWORDS] or distinct)[:MAX_QUERY_TERMS]


def spans(text: str) -> Iterator[tuple[str, int, int]]:
    """Tokens with their [start, end) character offsets in the original text."""
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        if m.group(2):
            if end - start <= MAX_WORD:
                yield _norm(m.group(2)), start, end
        elif end - start == 1:
            yield _norm(m.group(1)), start, end
        else:
            for i in range(start, end - 1):
                yield _norm(text[i : i + 2]), i, i + 2


def snippet(text: str, terms: list[str] | set[str], width: int = SNIPPET_CHARS) -> str:
    """The `width`-character passage holding the most distinct query terms, terms in <mark>, the rest HTML-escaped.

    With no term in the text (a purely semantic hit) the passage is the start of the text, which for a ticket is
    its subject and summary.
    """
    wanted = set(terms)
    head = text[:_SCAN_CHARS]
    hits = [(s, e, t) for t, s, e in spans(head) if t in wanted] if wanted else []
    start = _best_window(hits, width) if hits else 0
    start = _snap_start(head, start)
    end = min(len(head), start + width)
    marks = _merge([(s, e) for s, e, _ in hits if s >= start and e <= end])
    parts = ["…" if start > 0 else ""]
    cursor = start
    for s, e in marks:
        parts += [html.escape(head[cursor:s]), "<mark>", html.escape(head[s:e]), "</mark>"]
        cursor = e
    parts.append(html.escape(head[cursor:end]))
    if end < len(text):
        parts.append("…")
    return " ".join("".join(parts).split())


def _best_window(hits: list[tuple[int, int, str]], width: int) -> int:
    """Start of the window (two pointers over the hits) with the most distinct terms, then the most hits."""
    best, best_start, left = (0, 0), hits[0][0], 0
    counts: dict[str, int] = {}
    for right, (_, end, term) in enumerate(hits):
        counts[term] = counts.get(term, 0) + 1
        while end - hits[left][0] > width:
            gone = hits[left][2]
            counts[gone] -= 1
            if not counts[gone]:
                del counts[gone]
            left += 1
        score = (len(counts), right - left + 1)
        if score > best:
            best, best_start = score, hits[left][0]
    return max(0, best_start - width // 5)  # a little context before the first term


def _snap_start(text: str, start: int) -> int:
    """Move a window start back to the beginning of a word or line, at most 20 characters."""
    if start <= 20:
        return 0
    floor = max(0, start - 20)
    for i in range(start, floor, -1):
        if text[i - 1] in " \n\t.。、,!?！？":
            return i
    return start


def _merge(marks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans (a CJK term's bigrams) become one mark."""
    merged: list[tuple[int, int]] = []
    for s, e in sorted(marks):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged
