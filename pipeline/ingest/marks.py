"""Job marks: how the api knows that everything a job collected is stored (and embedded).

When an ingest job ends, its worker sends one more message to `tickets.raw`, on the job's key (so after every
record of the job, in the same partition): an empty batch with a `streamdesk-job-mark` header naming the job
and its tenant. The normalizer passes the mark on in its `tickets.normalized` message (`"marks"`), keyed by
the tenant as the job's rows were; the embedding agent passes it on to `tickets.vectors` after the vectors
of what came before it. The materializer writes each mark to `ingest_marks` (stage `stored`, then
`embedded`) in the transaction of the rows before it, so a stored mark means the rows are there too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

MARK_HEADER = "streamdesk-job-mark"


def mark_headers(job_id: str, tenant: str) -> dict[str, bytes]:
    return {MARK_HEADER: orjson.dumps({"job_id": job_id, "tenant": tenant})}


def marks_of(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> list[dict[str, Any]]:
    """The marks a message carries in its headers (Faust hands them over as a dict or as pairs)."""
    if not headers:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in pairs:
        if name == MARK_HEADER and value:
            try:
                mark = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if isinstance(mark, dict) and isinstance(mark.get("job_id"), str) and isinstance(mark.get("tenant"), str):
                out.append({"job_id": mark["job_id"], "tenant": mark["tenant"]})
    return out
