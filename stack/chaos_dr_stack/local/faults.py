"""Service faults the runner applies for drills: HTTP error injection into every processor replica.

The processors' hook (chaos_dr_stack.processor.faults) takes the per-stack secret that only the runner knows, so the
control API is the only way in. The runner keeps the active fault and its expiry, applies it to every replica,
and applies it again (with the time left) to a replica that restarts while it lives, before that replica counts
as ready: a restart must not quietly lower the error ratio the drill injected.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from chaos_dr_stack.fault_limits import MAX_FAULT_TTL_SECONDS

log = logging.getLogger(__name__)

FAULT_PATH = "/_gameday/fault"
TOKEN_HEADER = "X-Gameday-Token"
TOKEN_ENV = "GAMEDAY_FAULT_TOKEN"
"""Mirrors chaos_dr_stack.processor.faults (the runner does not import a service's code)."""
HTTP_ERRORS = "http-errors"
ALLOWED_STATUSES = (500, 503)


class FaultRequestError(ValueError):
    """A bad fault request; the message names the field."""


@dataclass(frozen=True)
class HttpErrors:
    ratio: float
    status: int
    ttl_seconds: float
    applied_at: float
    """Unix seconds when the runner started applying it: the drill's onset."""

    @property
    def expires_at(self) -> float:
        return self.applied_at + self.ttl_seconds

    def remaining(self, now: float) -> float:
        return self.expires_at - now


def parse_http_errors(body: object, now: float) -> HttpErrors:
    """Validate the control API's body; the same rules as the processors' hook, checked before anything is sent."""
    if not isinstance(body, dict):
        raise FaultRequestError(f'body must be a JSON object like {{"ratio": 1.0, "status": 503, "ttl_seconds": 60}}, got {body!r:.100}')
    unknown = sorted(set(body) - {"ratio", "status", "ttl_seconds"})
    if unknown:
        raise FaultRequestError(f"{unknown[0]}: unknown field (expected ratio, status, ttl_seconds)")

    def number(field: str) -> float:
        if field not in body:
            raise FaultRequestError(f"{field}: is required")
        value = body[field]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FaultRequestError(f"{field}: must be a number, got {value!r}")
        return float(value)

    ratio = number("ratio")
    if not 0 <= ratio <= 1:
        raise FaultRequestError(f"ratio: must be within [0, 1], got {body['ratio']!r}")
    status = body.get("status", 503)
    if isinstance(status, bool) or status not in ALLOWED_STATUSES:
        raise FaultRequestError(f"status: must be one of {', '.join(map(str, ALLOWED_STATUSES))}, got {status!r}")
    ttl = number("ttl_seconds")
    if not 0 < ttl <= MAX_FAULT_TTL_SECONDS:
        raise FaultRequestError(f"ttl_seconds: must be > 0 and <= {MAX_FAULT_TTL_SECONDS:g}, got {body['ttl_seconds']!r}")
    return HttpErrors(ratio=ratio, status=int(status), ttl_seconds=ttl, applied_at=now)


class FaultBook:
    """The runner's active faults. ``replicas()`` gives (name, base URL) of every processor replica now."""

    def __init__(self, token: str, http: Callable[[], httpx.AsyncClient], replicas: Callable[[], Iterable[tuple[str, str]]],
                 clock: Callable[[], float] = time.time):
        self._token = token
        self._http = http
        self._replicas = replicas
        self._clock = clock
        self._http_errors: HttpErrors | None = None
        self._lock = asyncio.Lock()

    def active_http_errors(self) -> HttpErrors | None:
        fault = self._http_errors
        if fault is not None and fault.remaining(self._clock()) <= 0:
            self._http_errors = fault = None  # expired; every replica cleared its own copy at the same moment
        return fault

    def listing(self) -> dict:
        fault = self.active_http_errors()
        faults = []
        if fault is not None:
            now = self._clock()
            faults.append({
                "kind": HTTP_ERRORS, "ratio": fault.ratio, "status": fault.status, "ttl_seconds": fault.ttl_seconds,
                "applied_at": fault.applied_at, "expires_at": fault.expires_at,
                "expires_in": round(fault.remaining(now), 3),
            })
        return {"faults": faults}

    async def inject_http_errors(self, body: object) -> dict:
        async with self._lock:
            fault = parse_http_errors(body, self._clock())
            self._http_errors = fault
            results = await asyncio.gather(*(self._put(name, url, fault) for name, url in self._replicas()))
        applied = [name for name, ok in results if ok]
        pending = [name for name, ok in results if not ok]
        log.info("fault http-errors ratio %g status %d for %g s: applied to %s%s", fault.ratio, fault.status,
                 fault.ttl_seconds, ", ".join(applied) or "no replica",
                 f"; pending (applied when ready): {', '.join(pending)}" if pending else "")
        return {**self.listing()["faults"][0], "applied_to": applied, "pending": pending}

    async def heal_http_errors(self) -> dict:
        async with self._lock:
            was_active = self.active_http_errors() is not None
            self._http_errors = None
            healed_at = self._clock()
            results = await asyncio.gather(*(self._delete(name, url) for name, url in self._replicas()))
        log.info("fault http-errors healed (was active: %s)", was_active)
        return {"kind": HTTP_ERRORS, "was_active": was_active, "healed_at": healed_at,
                "healed": [name for name, ok in results if ok], "unreachable": [name for name, ok in results if not ok]}

    async def reapply(self, name: str, url: str) -> None:
        """For a replica that just (re)started: give it the active fault with the time left. Raises when the
        replica refuses, so the supervisor keeps it out of the service until it has the fault."""
        fault = self.active_http_errors()
        if fault is None:
            return
        _, ok = await self._put(name, url, fault)
        if not ok:
            raise RuntimeError(f"could not re-apply the http-errors fault to {name}")
        log.info("fault http-errors re-applied to restarted %s", name)

    def _headers(self) -> dict[str, str]:
        return {TOKEN_HEADER: self._token}

    async def _put(self, name: str, url: str, fault: HttpErrors) -> tuple[str, bool]:
        remaining = fault.remaining(self._clock())
        if remaining <= 0:
            return name, True
        body = {"ratio": fault.ratio, "status": fault.status, "ttl_seconds": round(remaining, 3)}
        try:
            response = await self._http().put(url + FAULT_PATH, json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            log.warning("fault hook of %s did not answer: %s", name, exc)
            return name, False
        if response.status_code != 200:
            log.warning("fault hook of %s refused (%d): %s", name, response.status_code, response.text[:200])
        return name, response.status_code == 200

    async def _delete(self, name: str, url: str) -> tuple[str, bool]:
        try:
            response = await self._http().delete(url + FAULT_PATH, headers=self._headers())
        except httpx.HTTPError as exc:
            log.warning("fault hook of %s did not answer: %s", name, exc)
            return name, False
        return name, response.status_code == 200
