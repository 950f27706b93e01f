"""Provider faults: what the simulator does to a provider's requests, per the fault API's contract.

A partial fault must be exactly what it says: ``error_rate`` 0.5 fails every second request, never a lucky run of
three, because the flapping experiment judges a service by how it reacts to that rate. So, like the processor's
hook (chaos_dr_stack.processor.faults), the decision is a counter, not a coin: request ``n`` since the fault was set is
faulted when ``floor(n · p)`` increments.

Every fault carries a TTL and is gone at ``expires_at`` whether or not anybody removes it.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from chaos_dr_stack.fault_limits import MAX_FAULT_TTL_SECONDS
from chaos_dr_stack.providers.catalogue import PROVIDERS

MODES = ("error", "latency", "timeout", "reset", "malformed")
ERROR_STATUSES = (500, 503, 429)
MAX_LATENCY_MS = 600_000
MAX_RETRY_AFTER_S = 3600
FIELDS = ("mode", "status", "retry_after_s", "latency_ms", "error_rate", "ttl_seconds")


class FaultArgumentError(ValueError):
    """A bad fault request. ``field`` names the culprit; the message says what is expected."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownProvider(LookupError):
    def __init__(self, provider: str):
        super().__init__(f"unknown provider {provider!r}; providers are: {', '.join(PROVIDERS)}")
        self.provider = provider


@dataclass(frozen=True)
class ProviderFault:
    provider: str
    mode: str
    error_rate: Fraction
    ttl_seconds: float
    applied_at: float
    """Unix seconds."""
    status: int | None = None
    retry_after_s: int | None = None
    latency_ms: int | None = None

    @property
    def expires_at(self) -> float:
        return self.applied_at + self.ttl_seconds

    def describe(self, now: float) -> dict:
        out: dict[str, Any] = {"provider": self.provider, "mode": self.mode}
        if self.status is not None:
            out["status"] = self.status
        if self.retry_after_s is not None:
            out["retry_after_s"] = self.retry_after_s
        if self.latency_ms is not None:
            out["latency_ms"] = self.latency_ms
        out.update(
            error_rate=float(self.error_rate), ttl_seconds=self.ttl_seconds, applied_at=self.applied_at,
            expires_at=self.expires_at, expires_in=round(max(0.0, self.expires_at - now), 3),
        )
        return out


def _number(body: dict, name: str, *, integer: bool = False) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FaultArgumentError(name, f"must be a number, got {value!r:.60}")
    if integer and value != int(value):
        raise FaultArgumentError(name, f"must be a whole number, got {value!r}")
    return value


def parse_fault(provider: str, body: Any, now: float) -> ProviderFault:
    """Validate a ``PUT /_faults/{provider}`` body; raises UnknownProvider or FaultArgumentError naming the field."""
    if provider not in PROVIDERS:
        raise UnknownProvider(provider)
    if not isinstance(body, dict):
        raise FaultArgumentError(
            "body", f'must be a JSON object like {{"mode": "error", "status": 503, "ttl_seconds": 60}}, got {body!r:.100}'
        )
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise FaultArgumentError(unknown[0], f"unknown field (expected {', '.join(FIELDS)})")
    mode = body.get("mode")
    if mode not in MODES:
        raise FaultArgumentError("mode", f"must be one of {', '.join(MODES)}, got {mode!r:.60}")
    if "ttl_seconds" not in body:
        raise FaultArgumentError("ttl_seconds", f"is required (0 < t <= {MAX_FAULT_TTL_SECONDS:g})")
    ttl = _number(body, "ttl_seconds")
    if not 0 < ttl <= MAX_FAULT_TTL_SECONDS:
        raise FaultArgumentError("ttl_seconds", f"must be > 0 and <= {MAX_FAULT_TTL_SECONDS:g}, got {ttl!r}")
    rate = _number(body, "error_rate") if "error_rate" in body else 1
    if not 0 < rate <= 1:
        raise FaultArgumentError("error_rate", f"must be within (0, 1], got {rate!r}")

    status = retry_after = latency = None
    if mode == "error":
        status = body.get("status", 503)
        if isinstance(status, bool) or status not in ERROR_STATUSES:
            raise FaultArgumentError("status", f"must be one of {', '.join(map(str, ERROR_STATUSES))}, got {status!r:.60}")
    elif "status" in body:
        raise FaultArgumentError("status", f"only applies to mode 'error', not {mode!r}")
    if "retry_after_s" in body:
        if status != 429:
            raise FaultArgumentError("retry_after_s", "only applies to mode 'error' with status 429")
        retry_after = _number(body, "retry_after_s", integer=True)
        if not 0 <= retry_after <= MAX_RETRY_AFTER_S:
            raise FaultArgumentError("retry_after_s", f"must be within 0..{MAX_RETRY_AFTER_S}, got {retry_after!r}")
    elif status == 429:
        retry_after = 1
    if mode == "latency":
        if "latency_ms" not in body:
            raise FaultArgumentError("latency_ms", "is required with mode 'latency'")
        latency = _number(body, "latency_ms", integer=True)
        if not 1 <= latency <= MAX_LATENCY_MS:
            raise FaultArgumentError("latency_ms", f"must be within 1..{MAX_LATENCY_MS}, got {latency!r}")
    elif "latency_ms" in body:
        raise FaultArgumentError("latency_ms", f"only applies to mode 'latency', not {mode!r}")
    return ProviderFault(
        provider=provider, mode=mode, error_rate=Fraction(str(rate)), ttl_seconds=float(ttl), applied_at=now,
        status=None if status is None else int(status),
        retry_after_s=None if retry_after is None else int(retry_after),
        latency_ms=None if latency is None else int(latency),
    )


@dataclass
class _Active:
    fault: ProviderFault
    seen: int = 0
    injected: int = 0


class FaultBook:
    """The active fault of every provider, with its request counter. Thread-safe; ``clock`` is Unix seconds."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self._active: dict[str, _Active] = {}

    def set(self, fault: ProviderFault) -> dict:
        with self._lock:
            self._active[fault.provider] = _Active(fault)
            return fault.describe(self.clock())

    def clear(self, provider: str) -> bool:
        """Remove ``provider``'s fault; True when one was active."""
        if provider not in PROVIDERS:
            raise UnknownProvider(provider)
        with self._lock:
            return self._live(provider) is not None and self._active.pop(provider, None) is not None

    def clear_all(self) -> list[str]:
        with self._lock:
            healed = [p for p in PROVIDERS if self._live(p) is not None]
            self._active.clear()
            return healed

    def listing(self) -> list[dict]:
        with self._lock:
            now = self.clock()
            return [
                {**entry.fault.describe(now), "requests": entry.seen, "injected": entry.injected}
                for p in PROVIDERS if (entry := self._live(p)) is not None
            ]

    def is_current(self, fault: ProviderFault) -> bool:
        """Whether ``fault`` is still in force (not healed, replaced or expired): held requests poll this."""
        with self._lock:
            entry = self._live(fault.provider)
            return entry is not None and entry.fault is fault

    def decide(self, provider: str) -> ProviderFault | None:
        """Count one request to ``provider``; the fault to apply to it, or None to serve it normally."""
        with self._lock:
            entry = self._live(provider)
            if entry is None:
                return None
            entry.seen += 1
            n, rate = entry.seen, entry.fault.error_rate
            if math.floor(n * rate) > math.floor((n - 1) * rate):
                entry.injected += 1
                return entry.fault
            return None

    def _live(self, provider: str) -> _Active | None:
        entry = self._active.get(provider)
        if entry is not None and self.clock() >= entry.fault.expires_at:
            del self._active[provider]  # expired: the fault heals itself
            return None
        return entry
