"""A deterministic Freshdesk account generated from a seed: tickets, conversations, attachments, knowledge base."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.ingest.freshdesk.timestamps import iso
from simulators.freshdesk import corpus
from simulators.freshdesk.kb import KnowledgeBase, build_kb
from simulators.freshdesk.markup import NBSP, Bold, Markup

DAY = 86_400
CONVERSATION_COUNTS = (0, 1, 2, 3, 4, 5, 6, 7, 8)
CONVERSATION_WEIGHTS = (12, 20, 20, 15, 10, 8, 6, 5, 4)  # percent: most tickets get answered, a few never do
ATTACHMENT_KINDS = (("screenshot.png", "image/png"), ("invoice.pdf", "application/pdf"),
                    ("error-log.txt", "text/plain"), ("export.csv", "text/csv"), ("logs.zip", "application/zip"),
                    ("영수증.pdf", "application/pdf"), ("スクリーンショット.png", "image/png"))
MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "application/pdf": b"%PDF-1.7\n", "application/zip": b"PK\x03\x04"}
AGENTS = tuple(61_000_000_000 + i for i in range(8))


def domain_seed(seed: int, domain: str) -> int:
    """One stable seed per (seed, domain): every account differs, every run of one account is the same."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{domain.lower()}".encode()).digest()[:8], "big")


def midnight_utc() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Attachment:
    id: int
    name: str
    content_type: str
    size: int
    created: int

    def record(self, url: str) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "content_type": self.content_type, "size": self.size,
                "attachment_url": url, "created_at": iso(self.created), "updated_at": iso(self.created)}


@dataclass
class SimConversation:
    record: dict[str, Any]  # the API's fields except attachments, which need a signed URL when served
    attachments: list[Attachment] = field(default_factory=list)


@dataclass
class SimTicket:
    record: dict[str, Any]  # the API's fields (description included) except attachments
    created: int
    updated: int
    lang: str
    topic: str
    attachments: list[Attachment] = field(default_factory=list)
    conversations: list[SimConversation] = field(default_factory=list)

    def touch(self, epoch: int) -> None:
        self.updated = epoch
        self.record["updated_at"] = iso(epoch)


class Dataset:
    """Everything one simulated account holds; `apply_updates` changes tickets so incremental runs have work."""

    def __init__(self, tickets: int = 3000, seed: int = 1, kb_articles: int = 120, end: datetime | None = None,
                 span_days: int = 365, growth: float = 0.0) -> None:
        self.seed = seed
        self.end = int((end or midnight_utc()).timestamp())
        self._rng = random.Random(seed)
        self._ids = iter(range(80_000_000_000, 90_000_000_000))
        self.attachments: dict[int, Attachment] = {}
        self.tickets: dict[int, SimTicket] = {}
        self.version = 0
        self._views: dict[tuple[str, bool], tuple[int, list[SimTicket]]] = {}
        start = self.end - span_days * DAY
        # growth 0: tickets spread evenly over the span; growth g: density rising as t^g (a growing help desk)
        span = self.end - start
        times = (self._rng.randrange(start, self.end) if not growth else
                 start + int(span * self._rng.random() ** (1 / (1 + growth))) for _ in range(tickets))
        for number, created in enumerate(sorted(min(t, self.end - 1) for t in times), 1):
            self.tickets[number] = self._ticket(number, created)
        self.latest = max((t.updated for t in self.tickets.values()), default=self.end)
        self.kb: KnowledgeBase = build_kb(random.Random(seed ^ 0x5EED), kb_articles, self.end)

    def ordered(self, order_by: str, descending: bool) -> list[SimTicket]:
        """Tickets sorted as the API sorts them (ties broken by id), cached until the next update."""
        cached = self._views.get((order_by, descending))
        if cached and cached[0] == self.version:
            return cached[1]
        keys = {"created_at": lambda t: t.created, "updated_at": lambda t: t.updated,
                "due_by": lambda t: t.record["due_by"], "status": lambda t: t.record["status"]}
        view = sorted(self.tickets.values(), key=lambda t: (keys[order_by](t), t.record["id"]), reverse=descending)
        self._views[(order_by, descending)] = (self.version, view)
        return view

    def apply_updates(self, count: int, *, now: datetime | None = None,
                      new_conversation_rate: float = 0.5) -> list[int]:
        """Touch `count` tickets (distinct, increasing updated_at), some with a new customer reply; returns ids."""
        ids = sorted(self._rng.sample(sorted(self.tickets), min(count, len(self.tickets))))
        now_s = int((now or datetime.now(UTC)).timestamp())
        first = max(self.latest + 1, now_s - len(ids) + 1)
        for k, number in enumerate(ids):
            ticket, when = self.tickets[number], first + k
            if self._rng.random() < new_conversation_rate:
                ticket.conversations.append(self._conversation(ticket, "customer", when))
                ticket.record["status"] = 2  # a customer reply reopens the ticket
            else:
                ticket.record["status"] = self._rng.choice((3, 4, 5))
            ticket.touch(when)
        self.latest = max(self.latest, first + len(ids) - 1)
        self.version += 1
        return ids

    def attachment_chunks(self, attachment: Attachment, chunk: int = 65_536) -> Iterator[bytes]:
        """The attachment's bytes, generated on the fly (a 25 MB file costs no memory)."""
        rng = random.Random(self.seed * 1_000_003 ^ attachment.id)
        if attachment.content_type.startswith("text/"):
            block = "".join(f"{i},{rng.randrange(10**6)},ok\n" for i in range(chunk // 12)).encode()[:chunk]
        else:
            block = rng.randbytes(chunk)
        head = MAGIC.get(attachment.content_type, b"") + block
        sent = 0
        while sent < attachment.size:
            piece = (head if sent == 0 else block)[: attachment.size - sent]
            sent += len(piece)
            yield piece

    def _ticket(self, number: int, created: int) -> SimTicket:
        rng = self._rng
        lang = rng.choices(corpus.LANGUAGES, weights=(45, 35, 20))[0]
        topic = rng.choice(sorted(corpus.TOPICS))
        phrases = corpus.TOPICS[topic].phrases[lang]
        fill = _fill(rng)
        recent = self.end - created < 3 * DAY
        record = _ticket_record(rng, number, created, topic, lang, recent, fill)
        ticket = SimTicket(record, created, created, lang, topic)
        ticket.record["description"], ticket.record["description_text"] = _description(rng, lang, phrases, fill)
        if rng.random() < 0.15:
            ticket.attachments = [self._attachment(created) for _ in range(rng.choice((1, 1, 2)))]
        self._history(ticket)
        return ticket

    def _history(self, ticket: SimTicket) -> None:
        """Conversations after creation; every one moves updated_at, as adding a reply does in Freshdesk."""
        rng, room = self._rng, self.end - 1 - ticket.created
        count = rng.choices(CONVERSATION_COUNTS, weights=CONVERSATION_WEIGHTS)[0] if room > 3600 else 0
        if count == 0:
            if room > 3600 and rng.random() < 0.5:  # closed as spam/duplicate: updated, never answered
                ticket.touch(ticket.created + rng.randrange(600, min(room, 3 * DAY)))
            return
        offsets = sorted(rng.randrange(300, 5 * DAY) for _ in range(count))
        if offsets[-1] > room:
            offsets = sorted(rng.randrange(60, room) for _ in range(count))
        roles = ["agent" if rng.random() < 0.8 else "note"]
        while len(roles) < count:
            answer = roles[-1] != "customer" and rng.random() < 0.6
            roles.append("customer" if answer else rng.choice(("agent", "note")))
        for role, offset in zip(roles, offsets, strict=True):
            ticket.conversations.append(self._conversation(ticket, role, ticket.created + offset))
        ticket.touch(max(ticket.created + offsets[-1], ticket.updated))

    def _conversation(self, ticket: SimTicket, role: str, when: int) -> SimConversation:
        rng, phrases = self._rng, corpus.TOPICS[ticket.topic].phrases[ticket.lang]
        fill = _fill(rng)
        if role == "customer":
            text, user = rng.choice(corpus.FOLLOW_UPS[ticket.lang]), ticket.record["requester_id"]
        elif role == "note":
            text, user = rng.choice(corpus.NOTES[ticket.lang]), rng.choice(AGENTS)
        else:
            text, user = rng.choice(phrases.replies).format(**fill), rng.choice(AGENTS)
        signature = rng.choice(corpus.NAMES[ticket.lang])
        body, body_text = Markup().para(text).para(corpus.CLOSINGS[ticket.lang], signature).render()
        record = {"id": next(self._ids), "body": body, "body_text": body_text, "incoming": role == "customer",
                  "private": role == "note", "user_id": user, "source": 2 if role == "note" else 0,
                  "category": 3 if role == "note" else 2, "ticket_id": ticket.record["id"],
                  "from_email": f"customer{user % 1000}@example.com" if role == "customer" else None,
                  "to_emails": [], "cc_emails": [], "bcc_emails": [], "support_email": None,
                  "created_at": iso(when), "updated_at": iso(when), "last_edited_at": None,
                  "last_edited_user_id": None}
        attachments = [self._attachment(when)] if rng.random() < 0.08 else []
        return SimConversation(record, attachments)

    def _attachment(self, when: int) -> Attachment:
        rng, roll = self._rng, self._rng.random()
        name, content_type = rng.choice(ATTACHMENT_KINDS)
        size = (rng.randrange(2_000, 300_000) if roll < 0.7 else rng.randrange(300_000, 3_000_000) if roll < 0.95
                else rng.randrange(8_000_000, 25_000_000))
        attachment = Attachment(next(self._ids), name, content_type, size, when)
        self.attachments[attachment.id] = attachment
        return attachment


def _fill(rng: random.Random) -> dict[str, str]:
    return {"product": rng.choice(corpus.PRODUCTS), "order": f"A-{rng.randrange(10_000, 99_999)}",
            "amount": f"${rng.randrange(9, 499)}.{rng.randrange(100):02d}", "code": str(rng.randrange(1000, 9999))}


def _ticket_record(rng: random.Random, number: int, created: int, topic: str, lang: str, recent: bool,
                   fill: dict[str, str]) -> dict[str, Any]:
    spec, phrases = corpus.TOPICS[topic], corpus.TOPICS[topic].phrases[lang]
    status = rng.choices((2, 3, 4, 5), weights=(50, 30, 15, 5) if recent else (5, 5, 40, 50))[0]
    priority = rng.choices((1, 2, 3, 4), weights=(35, 40, 18, 7))[0]
    hours = {1: 72, 2: 48, 3: 24, 4: 8}[priority]
    return {
        "id": number, "subject": rng.choice(phrases.subjects).format(**fill), "status": status,
        "priority": priority, "source": rng.choices((1, 2, 3, 7), weights=(50, 25, 10, 15))[0],
        "type": spec.ticket_type, "tags": list(spec.tags) + (["vip"] if rng.random() < 0.05 else []),
        "requester_id": 60_000_000_000 + rng.randrange(600), "responder_id": rng.choice((*AGENTS, None)),
        "group_id": 62_000_000_000 + sorted(corpus.TOPICS).index(topic),
        "company_id": 63_000_000_000 + rng.randrange(40) if rng.random() < 0.5 else None,
        "product_id": None, "email_config_id": None, "cc_emails": [], "fwd_emails": [], "reply_cc_emails": [],
        "ticket_cc_emails": [], "to_emails": None, "support_email": None, "spam": False, "fr_escalated": False,
        "is_escalated": False, "nr_escalated": False, "nr_due_by": None, "association_type": None,
        "associated_tickets_count": None, "created_at": iso(created), "updated_at": iso(created),
        "due_by": iso(created + hours * 3600), "fr_due_by": iso(created + hours * 900),
        "custom_fields": {"cf_product": fill["product"], "cf_order_number": fill["order"]},
    }


def _description(rng: random.Random, lang: str, phrases: corpus.Phrases, fill: dict[str, str]) -> tuple[str, str]:
    first, second = rng.sample(phrases.problems, 2)
    doc = Markup().para(corpus.GREETINGS[lang]).para(first.format(**fill), second.format(**fill))
    if rng.random() < 0.6:
        doc.para(Bold(corpus.TRIED[lang], "")).bullets(rng.sample(phrases.details, 2))
    doc.para(Bold(corpus.ORDER_LABEL[lang], f":{NBSP}{fill['order']} & {fill['amount']}"))
    if rng.random() < 0.25:
        doc.hidden(rng.randrange(3))
    doc.para(corpus.CLOSINGS[lang], rng.choice(corpus.NAMES[lang]))
    return doc.render()
