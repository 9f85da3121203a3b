"""The simulated account's knowledge base: one category per language, three folders each, articles per topic."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from pipeline.ingest.freshdesk.timestamps import iso
from simulators.freshdesk import corpus
from simulators.freshdesk.markup import Markup

DAY = 86_400


@dataclass
class KnowledgeBase:
    categories: list[dict[str, Any]] = field(default_factory=list)
    folders: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by category id
    articles: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by folder id

    def article_count(self) -> int:
        return sum(len(a) for a in self.articles.values())


def build_kb(rng: random.Random, articles: int, end: int) -> KnowledgeBase:
    """Categories and folders in fixed order; articles cycle through topics, 80 % published."""
    kb = KnowledgeBase()
    folder_langs: list[tuple[dict[str, Any], str]] = []
    for c, lang in enumerate(corpus.LANGUAGES):
        created = end - (400 - c) * DAY
        category: dict[str, Any] = {"id": 70_000_000_000 + c, "name": corpus.CATEGORY_NAMES[lang], "description": None,
                    "visible_in_portals": [], "created_at": iso(created), "updated_at": iso(created)}
        kb.categories.append(category)
        kb.folders[category["id"]] = []
        for f, name in enumerate(corpus.FOLDER_NAMES[lang]):
            folder: dict[str, Any] = {"id": 71_000_000_000 + c * 10 + f, "name": name, "description": None,
                                      "visibility": 1, "category_id": category["id"], "created_at": iso(created),
                                      "updated_at": iso(created)}
            kb.folders[category["id"]].append(folder)
            kb.articles[folder["id"]] = []
            folder_langs.append((folder, lang))
    topics = sorted(corpus.TOPICS)
    for n in range(articles):
        folder, lang = folder_langs[n % len(folder_langs)]
        kb.articles[folder["id"]].append(_article(rng, n, topics[n % len(topics)], lang, folder, end))
    return kb


def _article(rng: random.Random, n: int, topic: str, lang: str, folder: dict[str, Any], end: int) -> dict[str, Any]:
    phrases = corpus.TOPICS[topic].phrases[lang]
    title, sentence = phrases.article
    edition = n // (len(corpus.TOPICS) * 9)  # same topic, same folder again: a later edition of the article
    if edition:
        title = f"{title} ({edition + 1})"
    body, text = (Markup().heading(title).para(sentence)
                  .bullets(list(phrases.details), ordered=True).para(phrases.replies[0]).render())
    created = end - rng.randrange(30, 360) * DAY
    updated = created + rng.randrange(0, 20) * DAY
    return {"id": 72_000_000_000 + n, "type": 1, "category_id": folder["category_id"], "folder_id": folder["id"],
            "title": title, "description": body, "description_text": text,
            "status": 2 if rng.random() < 0.8 else 1, "agent_id": 61_000_000_000 + rng.randrange(8),
            "tags": list(corpus.TOPICS[topic].tags), "seo_data": {}, "thumbs_up": rng.randrange(40),
            "thumbs_down": rng.randrange(5), "hits": rng.randrange(2000),
            "created_at": iso(created), "updated_at": iso(updated)}
