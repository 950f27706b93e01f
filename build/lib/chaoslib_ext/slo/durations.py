"""Prometheus durations (``30s``, ``5m``, ``1h30m``) as exact millisecond counts.

Held as integers so that dividing a window by the drill's time scale, comparing windows and naming recording rules
after them never suffer float rounding.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

_UNITS_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}

# Same grammar as Prometheus' model.ParseDuration: units in decreasing order, each at most once.
_PATTERN = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_PATTERN_UNITS = ("y", "w", "d", "h", "m", "s", "ms")

# Printing stops at days: "30d" reads better than Prometheus' own "4w2d", and both parse the same. One day prints
# as "24h", as the seeds write it (and as the alert name ...BurnRate24h says).
_FORMAT_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))
_DAY_MS = 86_400_000


@dataclass(frozen=True, order=True)
class Duration:
    """A non-negative Prometheus duration."""

    ms: int
    """Length in milliseconds, the finest unit Prometheus accepts."""

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``text`` (e.g. ``1h30m``); raises ValueError naming the text when it is not a duration."""
        match = _PATTERN.match(text) if isinstance(text, str) and text else None
        if not match or not any(match.groups()):
            raise ValueError(f"{text!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)")
        return cls(sum(int(n) * _UNITS_MS[u] for n, u in zip(match.groups(), _PATTERN_UNITS) if n))

    @classmethod
    def of_seconds(cls, seconds: float) -> Duration:
        return cls(int((Decimal(str(seconds)) * 1000).to_integral_value(ROUND_HALF_UP)))

    @property
    def seconds(self) -> float:
        return self.ms / 1000

    def scaled(self, time_scale: Decimal, floor: Duration) -> Duration:
        """This duration divided by ``time_scale``, rounded to the millisecond, never below ``floor``.

        Zero stays zero: a ``for: 0s`` alert fires on its first true evaluation at any scale.
        """
        if self.ms == 0:
            return self
        divided = int((Decimal(self.ms) / time_scale).to_integral_value(ROUND_HALF_UP))
        return Duration(max(divided, floor.ms))

    def __str__(self) -> str:
        if self.ms == 0:
            return "0s"
        parts, rest = [], self.ms
        if _DAY_MS <= self.ms < 2 * _DAY_MS:
            parts, rest = [f"{rest // 3_600_000}h"], rest % 3_600_000
        for unit, size in _FORMAT_UNITS:
            count, rest = divmod(rest, size)
            if count:
                parts.append(f"{count}{unit}")
        return "".join(parts)
