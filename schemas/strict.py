"""Types that accept exactly what the OpenAPI document says they take.

Pydantic's lax mode reads `0.5` (or `"0.5"`) as a Unix timestamp for a date-time and `0`/`1` as booleans; the
schema says "an ISO 8601 string" and "a JSON boolean", and a client that sends anything else has a bug it
should hear about (a 4xx naming the field), not a silently different query.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, StrictBool

_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _iso_only(value: Any) -> Any:
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("must be an ISO 8601 date or date-time string, not a number")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
IsoDate = Annotated[date, BeforeValidator(_iso_only)]
Flag = StrictBool  # true or false, not 0/1 or "yes"
