"""Sentences and their features for Korean, Japanese and English support text, without a tokenizer model.

Korean attaches particles to words and Japanese has no spaces, so CJK runs become character bigrams
(robust to both); Latin-script words are kept whole. TF-IDF over those features compares sentences.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

Vector = dict[str, float]

# A boundary: Latin terminators need following space; CJK ones (and their closing brackets) do not, nor does
# one after a Korean sentence ending (…다. …요. …죠. …까?).
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|[。！？]+[」』）\"”]*\s*|(?<=[다요죠까])[.!?]+\s*")
_ABBREVIATIONS = frozenset({"e.g", "i.e", "etc", "mr", "mrs", "ms", "dr", "vs", "no", "approx", "inc", "ltd", "st",
                            "jr", "sr", "fig", "ref", "cf", "p.s"})
_FEATURE = re.compile(r"[0-9A-Za-z\u00c0-\u024f]+|[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]+|"
                      r"[\u3040-\u30ff\u31f0-\u31ff\u4e00-\u9fff\uff66-\uff9f]+")
_STOPWORDS = frozenset("a an and are as at be been but by can could did do does for from had has have i if in "
                       "into is it its me my of on or our so that the their them then there this to was we were "
                       "will with would you your please".split())
# Greetings, thanks and sign-offs say nothing about the problem, and they recur in every message.
_BOILERPLATE = re.compile(
    r"^(hi|hello|hey|dear|good (morning|afternoon|evening)|thanks?( you)?|many thanks|thank you in advance|"
    r"(best|kind|warm)( regards)?|regards|cheers|sincerely|hope (this|you)|have a (nice|great))\b.{0,40}$|"
    r"^(안녕하세요|안녕하십니까|감사합니다|고맙습니다|수고하세요|수고하십시오|좋은 하루|문의 주셔서 감사)|"
    r"(드림|올림|배상)$|"
    r"^(お世話になっております|お世話になります|いつもお世話|よろしくお願い|宜しくお願い|ありがとうございま|"
    r"お問い合わせいただき|お疲れ様)", re.IGNORECASE)
MIN_EDGE = 0.02  # weaker similarities are noise, and pruning them keeps the graph sparse
MIN_CHARS = 8  # fewer non-space characters than this is a name, a label or a fragment


def split_sentences(text: str) -> list[str]:
    """Text -> sentences: every line break ends one, and so does a terminator (not after an abbreviation)."""
    out: list[str] = []
    for line in text.split("\n"):
        start = 0
        for match in _BOUNDARY.finditer(line):
            piece = line[start:match.end()].strip()
            if piece and not _ends_with_abbreviation(piece):
                out.append(piece)
                start = match.end()
        tail = line[start:].strip()
        if tail:
            out.append(tail)
    return out


def _ends_with_abbreviation(piece: str) -> bool:
    word = piece.rstrip(".!?…\"'”’)] ").rsplit(None, 1)[-1].lower() if piece.strip(".!?… ") else ""
    initial = len(word) == 1 and word.isascii() and word.isalpha()  # "J. Smith"
    return word in _ABBREVIATIONS or (initial and piece.rstrip().endswith("."))


def is_boilerplate(sentence: str) -> bool:
    """A greeting, thanks or sign-off, or too short to carry content."""
    return len("".join(sentence.split())) < MIN_CHARS or bool(_BOILERPLATE.search(sentence))


def features(sentence: str) -> dict[str, int]:
    """Term counts: lowercased Latin words (minus stopwords) and character bigrams of CJK runs."""
    counts: dict[str, int] = {}
    for run in _FEATURE.findall(sentence.lower()):
        if run.isascii() or run[0] <= "\u024f":
            terms = [] if run in _STOPWORDS or len(run) < 2 else [_stem(run)]
        else:
            terms = [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]
        for term in terms:
            counts[term] = counts.get(term, 0) + 1
    return counts


def _stem(word: str) -> str:
    """Just enough English suffix stripping that "invoices", "exported" and "exporting" meet their stems."""
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tfidf(docs: Sequence[dict[str, int]]) -> list[Vector]:
    """Unit-length TF-IDF vectors (smoothed idf), with the documents as the collection."""
    df: dict[str, int] = {}
    for doc in docs:
        for term in doc:
            df[term] = df.get(term, 0) + 1
    n = len(docs)
    vectors = []
    for doc in docs:
        vec = {t: (1 + math.log(c)) * (math.log((n + 1) / (df[t] + 1)) + 1) for t, c in doc.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        vectors.append({t: v / norm for t, v in vec.items()})
    return vectors


def cosine(a: Vector, b: Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(t, 0.0) for t, v in a.items())


def textrank(vectors: Sequence[Vector], damping: float = 0.85, iterations: int = 60) -> list[float]:
    """PageRank over the cosine-similarity graph (Mihalcea & Tarau 2004): how central each sentence is."""
    n = len(vectors)
    totals = [0.0] * n
    edges: list[tuple[int, int, float]] = []
    for i in range(n):
        for j in range(i + 1, n):
            weight = cosine(vectors[i], vectors[j])
            if weight > MIN_EDGE:
                edges.append((i, j, weight))
                totals[i] += weight
                totals[j] += weight
    inbound: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i, j, weight in edges:
        inbound[i].append((j, weight / totals[j]))
        inbound[j].append((i, weight / totals[i]))
    scores = [1.0 / n] * n if n else []
    for _ in range(iterations):
        new = [(1 - damping) / n + damping * sum(share * scores[j] for j, share in inbound[i]) for i in range(n)]
        moved = max((abs(a - b) for a, b in zip(new, scores, strict=True)), default=0.0)
        scores = new
        if moved < 1e-10:
            break
    return scores
