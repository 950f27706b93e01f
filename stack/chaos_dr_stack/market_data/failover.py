"""Which quote provider serves: the failover rule with hysteresis, on an injected clock (monotonic seconds).

- A poll of the serving provider fails when any of its fetches fails. After ``failover_after`` consecutive failed
  polls the service moves to the next provider in the chain (the caller retries a failed poll at once, so a dead
  provider costs ``failover_after`` fetch timeouts, not that many refresh periods).
- Providers above the serving one are probed (one request a tick). The service moves back up to the highest of them
  that has answered every probe for ``recovery_window_s``; one failed probe restarts its window.

So a provider failing half its requests (evenly, as the simulator's ``error_rate`` does) never fails two polls in a
row and is never left; and one that fails now and then is never returned to, because its window keeps restarting:
at most one move, no flapping.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class FailoverSettings:
    failover_after: int = 2
    """Consecutive failed polls before moving down the chain. Two, not one: a single lost request is a blip; two in a
    row, retried at once, is an outage. With a 1 s fetch timeout a blackholed provider is left within ~3 s."""
    recovery_window_s: float = 10.0
    """How long a higher provider must answer every probe before traffic returns to it."""


@dataclass
class ProviderHealth:
    consecutive_failures: int = 0
    healthy_since: float | None = None
    """Monotonic time of the first probe of an unbroken run of successful ones (providers above the serving one)."""


@dataclass(frozen=True)
class Move:
    from_provider: str
    to_provider: str
    reason: str


class ProviderSelector:
    def __init__(self, chain: tuple[str, ...], settings: FailoverSettings, clock: Callable[[], float]):
        if not chain:
            raise ValueError("the provider chain is empty")
        self.chain = chain
        self.settings = settings
        self.clock = clock
        self.serving = chain[0]
        self.health = {p: ProviderHealth() for p in chain}

    def above_serving(self) -> tuple[str, ...]:
        """The providers to probe: every one the service would rather use."""
        return self.chain[: self.chain.index(self.serving)]

    def at_bottom(self) -> bool:
        return self.serving == self.chain[-1]

    def record_poll(self, ok: bool) -> Move | None:
        """The result of a poll of the serving provider; the move it causes, if any."""
        health = self.health[self.serving]
        if ok:
            health.consecutive_failures = 0
            return None
        health.consecutive_failures += 1
        if health.consecutive_failures < self.settings.failover_after or self.at_bottom():
            return None
        left = self.serving
        health.healthy_since = None
        self.serving = self.chain[self.chain.index(left) + 1]
        self.health[self.serving].consecutive_failures = 0
        return Move(left, self.serving, f"{self.settings.failover_after} consecutive failed polls")

    def record_probe(self, provider: str, ok: bool) -> Move | None:
        """The result of a probe of a provider above the serving one; the return it causes, if any."""
        if provider not in self.above_serving():
            return None
        health = self.health[provider]
        now = self.clock()
        if not ok:
            health.healthy_since = None
            return None
        if health.healthy_since is None:
            health.healthy_since = now
        # Move to the highest provider whose window is complete (a probe for a lower one may complete first).
        for candidate in self.above_serving():
            since = self.health[candidate].healthy_since
            if since is not None and now - since >= self.settings.recovery_window_s:
                left = self.serving
                self.serving = candidate
                self.health[candidate].consecutive_failures = 0
                return Move(left, candidate, f"healthy for {self.settings.recovery_window_s:g} s")
        return None
