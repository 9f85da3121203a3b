"""Walking the app's routes (FastAPI >= 0.165 keeps included routers as nodes): for Allow headers and audits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def routes(app: Any) -> Iterator[Any]:
    """Every HTTP and websocket route of the app, included routers flattened, in matching order."""
    stack = list(app.routes)
    while stack:
        r = stack.pop(0)
        if hasattr(r, "effective_route_contexts"):
            stack[:0] = list(r.effective_route_contexts())
        else:
            yield r


def methods_for(app: Any, path: str) -> set[str]:
    """The methods some route serves at this concrete path."""
    return {m for r in routes(app) if getattr(r, "methods", None) and getattr(r, "path_regex", None) is not None
            and r.path_regex.match(path) for m in r.methods}


def path_of(route: Any) -> str:
    """A route's full path (an included websocket route keeps it on its original route)."""
    return getattr(route, "path", "") or getattr(getattr(route, "original_route", None), "path", "")


def dependant_of(route: Any) -> Any:
    """A route's dependency tree (an included websocket route keeps it on its original route)."""
    return getattr(route, "dependant", None) or getattr(getattr(route, "original_route", None), "dependant", None)
