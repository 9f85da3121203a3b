"""Deterministic record ids: the same source coordinates always give the same id, across replays."""

from __future__ import annotations

import hashlib


def derived_id(cluster_id: str, topic: str, partition: int, offset: int, index: int | None) -> str:
    """A 32-hex id from (cluster, topic, partition, offset, index in batch).

    The cluster id is part of it because the embedded broker starts over at offset 0 on each run
    while DuckDB remembers: without it, run 2's offset 0 would collide with run 1's.
    """
    raw = f"{cluster_id}\x1f{topic}\x1f{partition}\x1f{offset}\x1f{'' if index is None else index}"
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


class SourceIds:
    """`derived_id` bound to one source topic of one cluster, plus `many` for a partition's offsets at once."""

    def __init__(self, cluster_id: str, topic: str) -> None:
        self.cluster_id = cluster_id
        self.topic = topic

    def __call__(self, partition: int, offset: int, index: int | None) -> str:
        return derived_id(self.cluster_id, self.topic, partition, offset, index)

    def many(self, partition: int, offsets: list[int]) -> list[str]:
        """The same ids as `derived_id(..., offset, None)`; hashing the shared prefix once halves the cost."""
        head = hashlib.blake2b(f"{self.cluster_id}\x1f{self.topic}\x1f{partition}\x1f".encode(), digest_size=16)
        out = []
        for offset in offsets:
            h = head.copy()
            h.update(b"%d\x1f" % offset)
            out.append(h.hexdigest())
        return out
