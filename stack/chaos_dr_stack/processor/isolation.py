"""Find the events a database refuses for a data reason, by splitting the failing write in halves.

Pure: the write and the classification of its errors are passed in, so this runs without a database and
without sleeping. A data error (an int past int64, a string BSON cannot encode, a document too large, a
validation failure) fails the same way on every retry; retrying the batch as a whole would hold its partition
for good, and a replica that exits on it crash-loops on the same uncommitted event.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Isolation", "write_isolating"]


@dataclass
class Isolation:
    """Progress of writing one batch's keys in groups. The caller keeps it across attempts, so a retry after an
    outage re-sends only the groups not yet acknowledged (an acknowledged group re-sent would count a false
    duplicate delivery)."""

    pending: list[list[str]]
    """Groups still to write, in order: the batch's chunks at first, halves of a refused group later."""
    unwritable: dict[str, str] = field(default_factory=dict)
    """Keys the database refused for a data reason, with the kind of reason (a short machine word)."""
    writes: int = 0
    """Write calls made, the failed ones included (a lone poison event in a chunk of n costs about 2·log2(n))."""

    @classmethod
    def in_chunks(cls, keys: list[str], size: int) -> Isolation:
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        return cls(pending=[keys[i:i + size] for i in range(0, len(keys), size)])

    @property
    def done(self) -> bool:
        return not self.pending


def write_isolating(
    progress: Isolation,
    write: Callable[[list[str]], Mapping[str, str]],
    unwritable_kind: Callable[[BaseException], str | None],
) -> None:
    """Write every pending group of ``progress``, in order, until none is left.

    ``write(keys)`` stores those keys and returns the ones the database refused one by one (key -> kind; a bulk
    write reports its errors per document, and the others of the group are stored), or raises. An exception that
    ``unwritable_kind`` names (it returns the kind) is a data error in some document of the group, raised before
    any of it was stored (the client could not encode it) or by the server for the command as a whole: the group
    is split in halves, both written in turn, and a lone key that still fails is unwritable. Any other exception
    (an outage, a timeout) propagates unchanged, leaving that group and the ones after it pending for a retry."""
    while progress.pending:
        keys = progress.pending[0]
        progress.writes += 1
        try:
            refused = write(keys)
        except Exception as exc:
            kind = unwritable_kind(exc)
            if kind is None:
                raise
            progress.pending.pop(0)
            if len(keys) == 1:
                progress.unwritable[keys[0]] = kind
            elif keys:
                half = len(keys) // 2
                progress.pending[0:0] = [keys[:half], keys[half:]]
            continue
        progress.pending.pop(0)
        progress.unwritable.update(refused)
