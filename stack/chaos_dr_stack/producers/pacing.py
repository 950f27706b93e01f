"""Rate pacing on a schedule: event k is due at ``anchor + k / rate``. Pure (the caller passes the clock),
so sleep overshoot and slow sends do not accumulate into a lower rate, as fixed sleeps would."""
from __future__ import annotations


class Pacer:
    def __init__(self, rate: float, now: float, max_backlog_s: float = 1.0):
        """``max_backlog_s``: after a stall (broker outage, full queue) send at most this many seconds'
        worth of overdue events at once, then continue on a fresh schedule."""
        self._max_backlog_s = max_backlog_s
        self.set_rate(rate, now)

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float, now: float) -> None:
        if rate < 0:
            raise ValueError(f"rate must be >= 0 events/s, got {rate}")
        self._rate = rate
        self._anchor = now
        self._sent = 0

    def due(self, now: float) -> int:
        """How many events are due at ``now`` and not yet sent."""
        if self._rate <= 0:
            return 0
        backlog = (now - self._anchor) * self._rate - self._sent
        limit = self._max_backlog_s * self._rate
        if backlog > limit + 1:
            # Re-anchor so only ``limit`` events remain overdue.
            self._anchor = now - (self._sent + limit) / self._rate
            backlog = limit
        return max(0, int(backlog) + 1) if backlog >= 0 else 0

    def sent(self, count: int = 1) -> None:
        self._sent += count

    def delay(self, now: float, idle: float = 0.1) -> float:
        """Seconds until the next event is due (``idle`` while paused at rate 0)."""
        if self._rate <= 0:
            return idle
        return max(0.0, self._anchor + self._sent / self._rate - now)
