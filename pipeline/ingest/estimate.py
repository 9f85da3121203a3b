"""How many tickets a job will collect when no `max_tickets` says so.

Freshdesk has no count endpoint, but a job lists tickets by `updated_at` ascending, from its origin (the first
ticket it saw) to the account's newest update (asked once, one request: `newest_update`; now, if that failed).
The walk so far tells how densely tickets sit on that time axis; the estimate is what has been collected plus
the density carried over the span still to walk.

- The density is fitted as a straight line through the two halves of the walk so far (tickets per second of
  updated_at in each half), so a help desk that grows, or shrinks, is carried forward as it goes; where the
  line would fall below zero, the second half's density is used flat.
- With an even spread this is `collected / share of the span walked`, which is also what is used until each
  half of the walk holds `MIN_PER_HALF` tickets, and while the two halves' counts differ by no more than
  chance would (a line through noise only adds noise).

It is offered once at least `MIN_TICKETS` tickets and `MIN_SHARE` of the span are behind the listing (before that
it is noise), is never below what was already collected, and never above `max_tickets` when one is set.
bench/ingest_estimate.py measures it on accounts shaped in ways it was not tuned on (docs/operations.md).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime

MIN_TICKETS = 20
MIN_SHARE = 0.02
MIN_PER_HALF = 50  # a density line needs this many tickets in each half of the walk; fewer: the even spread


def estimate_total(collected: int, origin: datetime | None, position: datetime | None, end: datetime,
                   limit: int | None = None, walk: Sequence[tuple[float, int]] = ()) -> int | None:
    """The estimated number of tickets the listing will yield in all, or None when it cannot be said yet.

    `walk` is the listing's history: (seconds past the origin, tickets collected by then), in order.
    """
    if origin is None or position is None or collected < MIN_TICKETS or end <= origin:
        return None
    walked, span = (position - origin).total_seconds(), (end - origin).total_seconds()
    if walked / span < MIN_SHARE:
        return None
    rest = max(0.0, span - walked)
    remaining = collected * rest / walked  # an even spread
    half = _collected_at(walk, walked / 2)
    if half is not None and min(half, collected - half) >= MIN_PER_HALF and _differ(half, collected - half):
        first, second = half / (walked / 2), (collected - half) / (walked / 2)  # tickets per second
        slope = (second - first) / (walked / 2)
        at_position = second + slope * walked / 4  # the line, from the second half's middle to the position
        if at_position >= 0 and at_position + slope * rest >= 0:
            remaining = at_position * rest + slope * rest * rest / 2
        else:
            remaining = second * rest
    total = max(collected, round(collected + remaining))
    return min(total, limit) if limit is not None else total


def _differ(first: int, second: int) -> bool:
    """Do two halves' counts differ past chance? (as Poisson counts: |z| > 3) Else the spread is taken as even,
    and the line's noise stays out of the estimate."""
    return abs(second - first) > 3 * (first + second) ** 0.5


def _collected_at(walk: Sequence[tuple[float, int]], seconds: float) -> int | None:
    """Tickets collected when the listing passed `seconds` past the origin (the first sample at or after it)."""
    if not walk:
        return None
    i = bisect_left([w[0] for w in walk], seconds)
    return walk[i][1] if i < len(walk) else None
