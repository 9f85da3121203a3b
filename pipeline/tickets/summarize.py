"""Extractive summaries of ticket threads, and the integrated (searchable) object of a ticket or KB article.

A sentence's score combines three signals, in the manner of Edmundson (1969) with TextRank (Mihalcea & Tarau
2004) as the centrality signal:
* centrality: TextRank over TF-IDF cosine similarity (words + CJK character bigrams), what the thread keeps
  coming back to;
* title: similarity to the subject, which states the problem in a few words;
* position: support threads open with the problem, so the first sentences of the description weigh most,
  then the customer's follow-ups, agents' replies, and notes.
Short sentences and questions in replies are scored down (they rarely state the problem or the fix).
Greetings, sign-offs and repeated sentences are dropped first: they recur in every message and would
otherwise be the most "central". No external service, no randomness: the same thread gives the same summary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.tickets.dedupe import Row, latest_per_key
from pipeline.tickets.sentences import cosine, features, is_boilerplate, split_sentences, textrank, tfidf
from schemas.tickets import Attachment, Conversation, IntegratedObject, KbArticle, Ticket, TicketSummary

DEFAULT_SENTENCES = 3
DEFAULT_MAX_CHARS = 600
MAX_CANDIDATES = 200  # TextRank is quadratic; a thread longer than this is summarized from its first sentences
MIN_OPENING_CHARS = 40  # a description shorter than this once quotes are cut is a forward: keep the quoted part
MAX_ATTACHMENT_TEXT = 2_000  # characters of a text attachment merged into the integrated object
W_CENTRAL, W_TITLE, W_POSITION = 0.45, 0.30, 0.25
ROLE_WEIGHT = {"description": 1.0, "customer": 0.6, "agent": 0.4, "note": 0.2}
FULL_TERMS = 6  # fewer distinct terms than this: a short sentence, scored down (Kupiec et al. 1995's length cut-off)
QUESTION_FACTOR = 0.7  # a question in a reply asks for facts rather than stating the problem or the fix
REDUNDANT = 0.7  # a sentence this similar to one already chosen adds nothing
RESOLVED = frozenset({"resolved", "closed"})


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a thread as the summarizer sees it."""

    role: str  # description | customer | agent | note
    text: str


@dataclass(frozen=True, slots=True)
class _Candidate:
    text: str
    role: str
    rank_in_message: int


def opening(ticket: Ticket) -> str:
    """The description without quoted history, unless that leaves almost nothing (a forwarded e-mail)."""
    stripped = ticket.description_stripped
    return stripped if len(stripped) >= MIN_OPENING_CHARS else ticket.description_text


def thread(ticket: Ticket, conversations: Sequence[Conversation], include_private: bool = True) -> list[Message]:
    """The thread in order: the description, then replies and notes by creation time, quoted history cut."""
    first = opening(ticket)
    messages = [Message("description", first)] if first else []
    for conv in ordered(conversations):
        if conv.body_stripped and (include_private or not conv.private):
            messages.append(Message(conv.author_role, conv.body_stripped))
    return messages


def ordered(conversations: Sequence[Conversation]) -> list[Conversation]:
    """The newest version of each conversation, by creation time, then by numeric id."""
    latest: dict[str, Conversation] = {}
    for conv in conversations:
        if conv.key not in latest or conv.updated_at >= latest[conv.key].updated_at:
            latest[conv.key] = conv
    return sorted(latest.values(), key=lambda c: (c.created_at, len(c.source_id), c.source_id))


def top_sentences(messages: Sequence[Message], title: str, n: int = DEFAULT_SENTENCES,
                  max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """The n best sentences that fit in max_chars (joined by spaces), in their original order."""
    cands = _candidates(messages)
    if not cands or n <= 0:
        return []
    vectors = tfidf([features(c.text) for c in cands] + [features(title)])
    title_vec, vectors = vectors[-1], vectors[:-1]
    central = textrank(vectors)
    peak = max(central) or 1.0
    scores = [_score(c, central[i] / peak, cosine(vectors[i], title_vec), len(vectors[i]))
              for i, c in enumerate(cands)]
    chosen: list[int] = []
    used = -1
    for i in sorted(range(len(cands)), key=lambda k: (-scores[k], k)):
        size = len(cands[i].text) + 1
        if not chosen and size - 1 > max_chars:  # the best sentence, cut, says more than a weak one that fits
            return [cands[i].text[: max(max_chars - 1, 0)].rstrip() + "…"]
        if used + size > max_chars or any(cosine(vectors[i], vectors[j]) > REDUNDANT for j in chosen):
            continue
        chosen.append(i)
        used += size
        if len(chosen) == n:
            break
    return [cands[i].text for i in sorted(chosen)]


def _score(cand: _Candidate, central: float, title: float, terms: int) -> float:
    score = W_CENTRAL * central + W_TITLE * title + W_POSITION * ROLE_WEIGHT.get(cand.role, 0.2) / (
        1 + cand.rank_in_message)
    if cand.role != "description" and cand.text.endswith(("?", "？")):
        score *= QUESTION_FACTOR
    return score * math.sqrt(min(1.0, terms / FULL_TERMS))


def _candidates(messages: Sequence[Message]) -> list[_Candidate]:
    seen: set[str] = set()
    out: list[_Candidate] = []
    for message in messages:
        rank = 0
        for sentence in split_sentences(message.text):
            norm = " ".join(sentence.lower().split())
            if is_boilerplate(sentence) or norm in seen:
                continue
            seen.add(norm)
            out.append(_Candidate(sentence, message.role, rank))
            rank += 1
            if len(out) == MAX_CANDIDATES:
                return out
    return out


def resolution(ticket: Ticket, conversations: Sequence[Conversation]) -> str | None:
    """For a resolved or closed ticket, the first real sentence of the latest public agent reply."""
    if ticket.status not in RESOLVED:
        return None
    for conv in reversed(ordered(conversations)):
        if conv.author_role == "agent":
            return next((s for s in split_sentences(conv.body_stripped) if not is_boilerplate(s)), None)
    return None


def summarize(ticket: Ticket, conversations: Sequence[Conversation], n: int = DEFAULT_SENTENCES,
              max_chars: int = DEFAULT_MAX_CHARS, include_private: bool = True) -> TicketSummary:
    """The ticket's subject, status, top sentences of its thread and (when resolved or closed) its resolution."""
    sentences = top_sentences(thread(ticket, conversations, include_private), ticket.subject, n, max_chars)
    updated = max([ticket.updated_at, *(c.updated_at for c in conversations)])
    return TicketSummary(ticket_key=ticket.key, subject=ticket.subject, status=ticket.status, sentences=sentences,
                         summary=" ".join(sentences), resolution=resolution(ticket, conversations), updated_at=updated)


def integrate(ticket: Ticket, conversations: Sequence[Conversation], attachments: Sequence[Attachment],
              include_private: bool = True) -> IntegratedObject:
    """One searchable document for a ticket: subject, description, replies (and notes) in order, each followed
    by the names (and any text) of its attachments."""
    convs = [c for c in ordered(conversations) if include_private or not c.private]
    hidden = {("conversation", c.source_id) for c in conversations if c.private and not include_private}
    files = latest_per_key([a.model_dump() for a in attachments])  # embedded and fetched copies of one file
    files = [a for a in files if (a["parent_kind"], a["parent_id"]) not in hidden]
    by_parent: dict[tuple[str | None, str | None], list[Row]] = {}
    for att in files:
        by_parent.setdefault((att["parent_kind"], att["parent_id"]), []).append(att)
    blocks = ["\n".join(t for t in (ticket.subject, opening(ticket)) if t)]
    blocks += _attachment_lines(by_parent.pop(("ticket", ticket.source_id), []))
    for conv in convs:
        if conv.body_stripped:
            blocks.append(conv.body_stripped)
        blocks += _attachment_lines(by_parent.pop(("conversation", conv.source_id), []))
    for rest in by_parent.values():
        blocks += _attachment_lines(rest)
    summary = summarize(ticket, convs, include_private=include_private)
    names = [a["name"] for a in files]
    updated = max([ticket.updated_at, *(c.updated_at for c in convs), *(a.updated_at for a in attachments)])
    return IntegratedObject(tenant=ticket.tenant, platform=ticket.platform, domain=ticket.domain,
                            source_id=ticket.source_id, updated_at=updated, job_id=ticket.job_id,
                            object_type="ticket", title=ticket.subject, text="\n\n".join(b for b in blocks if b),
                            summary=summary.summary or None, status=ticket.status, tags=ticket.tags,
                            conversation_count=len(convs), attachment_names=names, created_at=ticket.created_at)


def _attachment_lines(attachments: list[Row]) -> list[str]:
    lines = []
    for att in attachments:
        text = (att.get("content_text") or "")[:MAX_ATTACHMENT_TEXT]
        lines.append(f"Attachment: {att['name']}" + (f"\n{text}" if text else ""))
    return lines


def integrate_article(article: KbArticle) -> IntegratedObject:
    """One searchable document for a KB article: title, where it is filed, and its text."""
    path = " / ".join(p for p in (article.category_name, article.folder_name) if p)
    text = "\n".join(p for p in (article.title, path, article.description_text) if p)
    sentences = top_sentences([Message("description", article.description_text)], article.title)
    return IntegratedObject(tenant=article.tenant, platform=article.platform, domain=article.domain,
                            source_id=article.source_id, updated_at=article.updated_at, job_id=article.job_id,
                            object_type="kb_article", title=article.title, text=text,
                            summary=" ".join(sentences) or None, status=article.status, tags=article.tags,
                            conversation_count=0, attachment_names=[], created_at=article.created_at)
