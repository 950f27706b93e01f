"""What the broker acknowledged, per producer id: the loss probe compares this with Mongo."""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FAILED_SEQS_KEPT = 10_000
"""Only the most recent failed seqs are listed (the count is exact), so a long outage cannot grow memory."""


@dataclass
class _Entry:
    producer_id: str
    started_at: float
    sent: int = 0
    acked: int = 0
    max_acked_seq: int = 0
    failed: int = 0
    failed_seqs: deque[int] = field(default_factory=lambda: deque(maxlen=FAILED_SEQS_KEPT))


class AckLedger:
    """Thread-safe: delivery callbacks write from the producer threads, the API reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def register(self, producer_id: str, started_at: float) -> None:
        with self._lock:
            self._entries[producer_id] = _Entry(producer_id, started_at)

    def sent(self, producer_id: str) -> None:
        with self._lock:
            self._entries[producer_id].sent += 1

    def acked(self, producer_id: str, seq: int) -> None:
        with self._lock:
            entry = self._entries[producer_id]
            entry.acked += 1
            entry.max_acked_seq = max(entry.max_acked_seq, seq)

    def failed(self, producer_id: str, seq: int) -> None:
        with self._lock:
            entry = self._entries[producer_id]
            entry.failed += 1
            entry.failed_seqs.append(seq)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "producer_id": e.producer_id,
                    "acked": e.acked,
                    "max_acked_seq": e.max_acked_seq,
                    "failed_seqs": sorted(e.failed_seqs),
                    "failed": e.failed,
                    "sent": e.sent,
                    "started_at": e.started_at,
                }
                for e in self._entries.values()
            ]
