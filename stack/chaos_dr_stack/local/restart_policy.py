"""When to restart a child that died: pure functions of times and counts, so they are tested without sleeping."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential back-off between restarts, like the kubelet's CrashLoopBackOff but with drill-sized numbers."""

    initial_delay: float = 0.5
    """Seconds from the first death to its restart. Short, so a killed replica comes back about as fast as a
    container the kubelet restarts, while a process that dies on start cannot spin the CPU."""

    multiplier: float = 2.0
    """Factor applied to the delay for each further death in a row. Doubling, as the kubelet does."""

    max_delay: float = 10.0
    """Seconds; the cap on the delay. The kubelet caps at 300 s; 10 s keeps a crash-looping component from
    outlasting a drill of a few minutes, and still bounds the churn to about 6 restarts a minute."""

    stable_after: float = 30.0
    """Seconds a child must have run for its death to count as a first death again (the delay resets).
    Long enough that a process crashing soon after becoming ready still backs off."""

    def __post_init__(self) -> None:
        if self.initial_delay <= 0:
            raise ValueError(f"initial_delay must be > 0 seconds, got {self.initial_delay}")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if self.max_delay < self.initial_delay:
            raise ValueError(f"max_delay ({self.max_delay} s) must be >= initial_delay ({self.initial_delay} s)")
        if self.stable_after <= 0:
            raise ValueError(f"stable_after must be > 0 seconds, got {self.stable_after}")


def restart_delay(policy: RestartPolicy, deaths_in_a_row: int) -> float:
    """Seconds to wait before restarting after the ``deaths_in_a_row``-th death in a row (1 = the first)."""
    if deaths_in_a_row < 1:
        raise ValueError(f"deaths_in_a_row must be >= 1, got {deaths_in_a_row}")
    if policy.multiplier == 1:
        return policy.initial_delay
    # Bound the exponent so a long crash loop cannot overflow the float.
    steps_to_cap = math.ceil(math.log(policy.max_delay / policy.initial_delay, policy.multiplier))
    exponent = min(deaths_in_a_row - 1, steps_to_cap)
    return min(policy.max_delay, policy.initial_delay * policy.multiplier**exponent)


def after_death(policy: RestartPolicy, deaths_before: int, ran_for: float) -> tuple[int, float]:
    """A child died after running ``ran_for`` seconds, with ``deaths_before`` deaths in a row before this one.

    Returns ``(deaths_in_a_row, delay)``: the new count to remember, and the seconds to wait before restarting.
    """
    if ran_for < 0:
        raise ValueError(f"ran_for must be >= 0 seconds, got {ran_for}")
    deaths = 1 if ran_for >= policy.stable_after else deaths_before + 1
    return deaths, restart_delay(policy, deaths)
