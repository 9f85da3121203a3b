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
    """The methods of the path as OpenAPI reads it: the most concrete templates that match win
    (`/schedules/current` is its own path, not a `/schedules/{schedule_id}`)."""
    matching = [r for r in routes(app) if getattr(r, "methods", None) and getattr(r, "path_regex", None) is not None
                and r.path_regex.match(path)]
    if not matching:
        return set()
    documented = [r for r in matching if getattr(r, "include_in_schema", True)]
    matching = documented or matching  # a hidden route beside documented ones only explains a wrong call
    fewest = min(path_of(r).count("{") for r in matching)
    return {m for r in matching if path_of(r).count("{") == fewest for m in r.methods}


def path_of(route: Any) -> str:
    """A route's full path (an included websocket route keeps it on its original route)."""
    return getattr(route, "path", "") or getattr(getattr(route, "original_route", None), "path", "")


def dependant_of(route: Any) -> Any:
    """A route's dependency tree (an included websocket route keeps it on its original route)."""
    return getattr(route, "dependant", None) or getattr(getattr(route, "original_route", None), "dependant", None)
