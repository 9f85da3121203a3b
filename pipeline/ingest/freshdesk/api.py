"""Facts about Freshdesk's API v2 that the client and the simulator share: what a request costs, how to name it."""

from __future__ import annotations

import re

PREFIX = "/api/v2"
# a 404 here means no such account
TOP_LEVEL = ("/api/v2/tickets", "/api/v2/solutions/categories", "/api/v2/agents/me")
_ONE_TICKET = re.compile(r"^/api/v2/tickets/\d+$")


def credits_for(path: str, include: str | None) -> int:
    """What a GET costs (our documented rule): 1, plus 2 per `include` on the ticket list, 1 per include on a ticket."""
    includes = len([i for i in (include or "").split(",") if i.strip()])
    if path.rstrip("/") == "/api/v2/tickets":
        return 1 + 2 * includes
    if _ONE_TICKET.match(path):
        return 1 + includes
    return 1


def endpoint_label(method: str, path: str) -> str:
    """`GET /api/v2/tickets/{id}/conversations`: the route, so counters do not grow one key per ticket."""
    parts = ["{id}" if p.isdigit() else p for p in path.rstrip("/").split("/")]
    return f"{method} {'/'.join(parts)}"
