"""A circuit breaker per provider, on an injected clock (monotonic seconds), so its rules are tested without sleeping.

Rules (docs/local-stack-contract.md):
- closed → open after one *slow* failure (a timeout or a connection that failed: each one costs a caller the whole
  timeout, so a dead provider may cost at most one) or after ``failure_threshold`` consecutive *fast* failures
  (an error status, a malformed answer: cheap, and one could be a blip).
- open → skipped until ``cooldown_s`` after it opened; then half-open: exactly one caller is let through (the probe),
  the others skip it. The probe's success closes the circuit; its failure opens it for another cool-down.
- a 429 is not a fault of the provider's health: it skips the provider until its Retry-After, without opening.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN, RATE_LIMITED = "closed", "open", "half_open", "rate_limited"
STATE_CODES = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2, RATE_LIMITED: 3}


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 3
    """Consecutive fast failures (error status, malformed body) that open the circuit."""
    cooldown_s: float = 10.0
    """How long an open circuit skips the provider before one request probes it again. Short enough that the
    primary is back within seconds of healing; long enough that a dead one costs one timeout per 10 s, not per call."""


class CircuitBreaker:
    def __init__(self, settings: BreakerSettings, clock: Callable[[], float]):
        self.settings = settings
        self._clock = clock
        self._state = CLOSED
        self._open_until = 0.0
        self._rate_limited_until = 0.0
        self._probe_in_flight = False
        self.consecutive_failures = 0

    @property
    def state(self) -> str:
        now = self._clock()
        if now < self._rate_limited_until:
            return RATE_LIMITED
        if self._state == OPEN and now >= self._open_until:
            return HALF_OPEN
        return self._state

    @property
    def open_until(self) -> float | None:
        """Monotonic time until which the provider is skipped, or None."""
        state = self.state
        if state == RATE_LIMITED:
            return self._rate_limited_until
        if state == OPEN:
            return self._open_until
        return None

    def try_acquire(self) -> str | None:
        """May a request use the provider now? None: yes. Otherwise why not: "circuit_open" or "rate_limited".
        In half-open, only the first caller gets through until its result is recorded."""
        state = self.state
        if state == RATE_LIMITED:
            return "rate_limited"
        if state == OPEN:
            return "circuit_open"
        if state == HALF_OPEN:
            if self._probe_in_flight:
                return "circuit_open"
            self._probe_in_flight = True
        return None

    def record_success(self) -> None:
        self._state = CLOSED
        self._probe_in_flight = False
        self.consecutive_failures = 0

    def record_failure(self, slow: bool) -> None:
        """``slow``: a timeout or connection failure (opens at once); else an error status or malformed answer."""
        self.consecutive_failures += 1
        probing = self._probe_in_flight or self.state == HALF_OPEN
        self._probe_in_flight = False
        if slow or probing or self.consecutive_failures >= self.settings.failure_threshold:
            self._state = OPEN
            self._open_until = self._clock() + self.settings.cooldown_s

    def record_rate_limited(self, retry_after_s: float | None) -> None:
        """A 429: skip the provider until Retry-After (the cool-down when the header is missing or unreadable)."""
        self._probe_in_flight = False
        wait = self.settings.cooldown_s if retry_after_s is None else max(0.0, retry_after_s)
        self._rate_limited_until = self._clock() + wait

    def release(self) -> None:
        """The caller gave up before an outcome (its budget ran out elsewhere): let the next caller probe."""
        self._probe_in_flight = False
