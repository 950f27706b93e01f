"""Pure measurement logic behind the probes: no I/O, no clocks, so it is tested without a stack or sleeping."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def quantile(values: Iterable[float], q: float) -> float:
    """The q-quantile (0 ≤ q ≤ 1) by linear interpolation between closest ranks, as numpy's default does."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile q must be within [0, 1], got {q}")
    ordered = sorted(values)
    if not ordered:
        raise ValueError("quantile of no values")
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distribution(values: Iterable[float]) -> dict:
    """p50, p95 and max of a set of measurements, as failover and recovery probes report them."""
    measured = list(values)
    return {
        "n": len(measured),
        "p50": round(quantile(measured, 0.50), 3),
        "p95": round(quantile(measured, 0.95), 3),
        "max": round(max(measured), 3),
    }


@dataclass(frozen=True)
class ProducerAcks:
    producer_id: str
    max_acked_seq: int
    failed_seqs: frozenset[int] = field(default_factory=frozenset)
    first_seq: int = 1
    """The first sequence number in the window being checked (1 for the producer's whole life)."""

    def expected(self) -> set[int]:
        """Sequence numbers the broker acknowledged in the window: everything sent, less what failed."""
        return set(range(self.first_seq, self.max_acked_seq + 1)) - set(self.failed_seqs)


def missing_events(acks: ProducerAcks, stored_seqs: Iterable[int]) -> list[int]:
    """Acknowledged sequence numbers of one producer that are not stored: the events the pipeline lost."""
    return sorted(acks.expected() - set(stored_seqs))


def recovery_seconds(
    fault_at: float,
    replica_ready_at: float | None,
    partition_resumed_at: Mapping[str, float | None],
) -> float | None:
    """Seconds from the fault until the replica is ready again AND every partition that was active before
    the fault has had an event written after it. None while any of those has not happened yet."""
    if replica_ready_at is None or any(t is None for t in partition_resumed_at.values()):
        return None
    recovered_at = max([replica_ready_at, *[t for t in partition_resumed_at.values() if t is not None]])
    return max(0.0, recovered_at - fault_at)


def partition_resumed_at(writes: Iterable[float], fault_at: float, gap_seconds: float) -> tuple[float, float] | None:
    """When one partition was being processed again after a fault, from its write times (``written_at``).

    The partition *stalled* when, starting from its last write at or before the fault, a gap longer than
    ``gap_seconds`` begins within ``gap_seconds`` of the fault; it *resumed* at the first write after that gap.
    (A graceful stop may still write its in-flight batch just after the fault; the gap after it is the stall.)
    Without such a gap the partition never stopped: it resumed at its first write after the fault.

    Returns ``(resumed_at, stall_seconds)`` (stall 0.0 when there was none), or None while undecided: no write
    after the fault yet, or a gap still open."""
    ordered = sorted(writes)
    before = [w for w in ordered if w <= fault_at]
    after = [w for w in ordered if w > fault_at]
    previous = before[-1] if before else fault_at
    for write in after:
        if write - previous > gap_seconds and previous <= fault_at + gap_seconds:
            return write, write - previous
        if write > fault_at + gap_seconds:
            return after[0], 0.0
        previous = write
    return None


def failover_seconds(fault_at: float, resumed: Mapping[str, tuple[float, float] | None]) -> float | None:
    """Seconds from the fault until every partition was being processed again; None while any is undecided."""
    if not resumed or any(r is None for r in resumed.values()):
        return None
    return max(0.0, max(r[0] for r in resumed.values() if r is not None) - fault_at)


def share_within(lags: Iterable[float], budget: float) -> float | None:
    """The share (0..1) of lags at or under ``budget`` seconds; None for no lags."""
    values = list(lags)
    if not values:
        return None
    return sum(1 for v in values if v <= budget) / len(values)


def write_gap_across(appends: Iterable[float], fault_at: float, onset_until: float | None = None) -> float | None:
    """Seconds nobody could write to a partition across a fault: the longest pause between consecutive appends
    that begins at its last append at or before ``fault_at``, or later but before ``onset_until`` (default
    ``fault_at``): a fault may bite a moment after its recorded start (a kill sent through the API server, a
    policy engine's next sync), and the pause then begins after it. None until an append after ``onset_until``
    closes every such pause, and when the partition had no append before the fault (nothing to measure from)."""
    times = sorted(appends)
    onset_until = fault_at if onset_until is None else max(fault_at, onset_until)
    before = [t for t in times if t <= fault_at]
    if not before or times[-1] <= onset_until:
        return None
    return max(after - start for start, after in zip(times, times[1:])
               if before[-1] <= start and (start <= fault_at or start < onset_until))
