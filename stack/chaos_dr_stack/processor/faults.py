"""The processor's fault hook: deterministic HTTP error injection for burn-rate drills.

A drill needs an error ratio that is exactly what it says: a 5 % fault must be 5 %, never a lucky 8 % that fires
an alert the negative drill says must stay silent. So the injector is a counter, not a coin: request ``n`` (1, 2,
… since the fault was set) fails when ``floor(n · p)`` increments, which fails exactly ``floor(N · p)`` of the first
``N`` requests, spread as evenly as integers allow.

The hook (``PUT``/``GET``/``DELETE`` ``/_gameday/fault``) takes a per-stack secret in the ``X-Gameday-Token`` header.
The runner generates it at start and passes it to the processors in ``GAMEDAY_FAULT_TOKEN`` (environment only;
never on a command line, never logged). Without the token, or with a wrong one, the hook answers 403 and nothing
changes; a processor started without a token has the hook disabled (403 to everyone). The hook and ``/metrics`` are
never failed, and the hook's own requests are not counted in ``starlette_requests_total`` (they are not user traffic).
Nor are the kubelet's probes failed (``User-Agent: kube-probe/...``), and they do not count towards the injected
ratio: locally the runner's readiness check takes an injected error as "ready" (the replica answered), and on
Kubernetes a probe failed by the drill would take every replica out of the Service, so the server would stop
seeing the very requests whose error ratio the drill injects.

A fault clears itself ``ttl_seconds`` after it was set, even if nobody removes it.
"""
from __future__ import annotations

import hmac
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from starlette.routing import Match

from chaos_dr_stack.fault_limits import MAX_FAULT_TTL_SECONDS

FAULT_PATH = "/_gameday/fault"
TOKEN_HEADER = "x-gameday-token"
TOKEN_ENV = "GAMEDAY_FAULT_TOKEN"
INJECTED_HEADER = "X-Gameday-Injected"
"""Every injected response carries ``X-Gameday-Injected: 1``, so a readiness check can tell a synthetic error
from a real one."""
LIVENESS_PATH = "/livez"
NEVER_FAILED = ("/metrics", LIVENESS_PATH, FAULT_PATH)
KUBELET_PROBE_AGENT = b"kube-probe/"
"""How the kubelet's httpGet probes introduce themselves (``kube-probe/<major>.<minor>``)."""
ALLOWED_STATUSES = (500, 503)


class FaultArgumentError(ValueError):
    """A fault request with a bad field. ``field`` names it; the message says what is expected."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class HttpErrorFault:
    ratio: Fraction
    """Share of requests to fail, exactly (parsed from the decimal text, so 0.05 is 1/20)."""
    status: int
    ttl_seconds: float

    def to_json(self) -> dict:
        return {"ratio": float(self.ratio), "status": self.status, "ttl_seconds": self.ttl_seconds}


def _number(body: dict, field: str) -> float:
    if field not in body:
        raise FaultArgumentError(field, "is required")
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FaultArgumentError(field, f"must be a number, got {value!r}")
    return value


def parse_fault(body: Any) -> HttpErrorFault:
    """Validate ``{"ratio": p, "status": 500|503, "ttl_seconds": s}``; raises FaultArgumentError naming the field."""
    if not isinstance(body, dict):
        raise FaultArgumentError("body", f'must be a JSON object like {{"ratio": 0.05, "status": 503, "ttl_seconds": 60}}, got {body!r:.100}')
    unknown = sorted(set(body) - {"ratio", "status", "ttl_seconds"})
    if unknown:
        raise FaultArgumentError(unknown[0], "unknown field (expected ratio, status, ttl_seconds)")
    ratio = _number(body, "ratio")
    if not 0 <= ratio <= 1:
        raise FaultArgumentError("ratio", f"must be within [0, 1], got {ratio!r}")
    status = body.get("status", 503)
    if isinstance(status, bool) or status not in ALLOWED_STATUSES:
        raise FaultArgumentError("status", f"must be one of {', '.join(map(str, ALLOWED_STATUSES))}, got {status!r}")
    ttl = _number(body, "ttl_seconds")
    if not 0 < ttl <= MAX_FAULT_TTL_SECONDS:
        raise FaultArgumentError("ttl_seconds", f"must be > 0 and <= {MAX_FAULT_TTL_SECONDS:g}, got {ttl!r}")
    return HttpErrorFault(ratio=Fraction(str(ratio)), status=int(status), ttl_seconds=float(ttl))


class DeterministicInjector:
    """The active fault, if any, and the request counter. Thread-safe; ``clock`` is monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._fault: HttpErrorFault | None = None
        self._expires: float = 0.0
        self._seen = 0
        self._failed = 0

    def set(self, fault: HttpErrorFault) -> dict:
        with self._lock:
            self._fault, self._expires, self._seen, self._failed = fault, self._clock() + fault.ttl_seconds, 0, 0
            return self._describe()

    def clear(self) -> bool:
        """Remove the fault; True when one was active."""
        with self._lock:
            active = self._active()
            self._fault = None
            return active

    def describe(self) -> dict:
        with self._lock:
            return self._describe()

    def _active(self) -> bool:
        if self._fault is not None and self._clock() >= self._expires:
            self._fault = None  # expired: the fault clears itself
        return self._fault is not None

    def _describe(self) -> dict:
        if not self._active():
            return {"active": False}
        return {
            "active": True, **self._fault.to_json(), "expires_in": round(self._expires - self._clock(), 3),
            "requests": self._seen, "injected": self._failed,
        }

    def decide(self) -> int | None:
        """Count one request; the status to fail it with, or None to let it through."""
        with self._lock:
            if not self._active():
                return None
            fault = self._fault
            self._seen += 1
            n = self._seen
            if math.floor(n * fault.ratio) > math.floor((n - 1) * fault.ratio):
                self._failed += 1
                return fault.status
            return None


def _from_the_kubelet(scope) -> bool:
    return dict(scope.get("headers") or []).get(b"user-agent", b"").startswith(KUBELET_PROBE_AGENT)


class FaultMiddleware:
    """Pure ASGI middleware: serves the hook and fails requests as the injector decides.

    Install it *inside* starlette_exporter's middleware, so injected responses are counted like real ones. Only
    requests that match one of ``router``'s routes are failed, and an injected response leaves the matched route in
    the scope as the router would: starlette_exporter drops requests without an endpoint from its metrics, and
    labels the rest with the route's path, so an injected 503 on /gpu/info is counted exactly like a real one."""

    def __init__(self, app, injector: DeterministicInjector, token: str | None, router=None):
        self.app = app
        self.injector = injector
        self._token = token.encode() if token else None
        self._router = router

    def _route_scope(self, scope) -> dict | None:
        if self._router is None:
            return {}
        for route in self._router.routes:
            match, child_scope = route.matches(scope)
            if match == Match.FULL:
                return {**child_scope, "router": self._router}
        return None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == FAULT_PATH:
            await self._hook(scope, receive, send)
            return
        if path not in NEVER_FAILED and not _from_the_kubelet(scope) and \
                (route_scope := self._route_scope(scope)) is not None:
            status = self.injector.decide()
            if status is not None:
                scope.update(route_scope)
                await _respond(send, status, {"detail": "injected fault (gameday drill)"}, injected=True)
                return
        await self.app(scope, receive, send)

    def _authorised(self, scope) -> bool:
        if self._token is None:
            return False
        given = dict(scope.get("headers") or []).get(TOKEN_HEADER.encode())
        return given is not None and hmac.compare_digest(given, self._token)

    async def _hook(self, scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if not self._authorised(scope):
            detail = "fault hook disabled: no token configured" if self._token is None else (
                f"missing or wrong {TOKEN_HEADER} header")
            await _respond(send, 403, {"detail": detail})
            return
        method = scope.get("method")
        if method == "GET":
            await _respond(send, 200, self.injector.describe())
        elif method == "DELETE":
            await _respond(send, 200, {"healed": self.injector.clear()})
        elif method == "PUT":
            try:
                fault = parse_fault(json.loads(body) if body.strip() else None)
            except ValueError as exc:  # FaultArgumentError, or JSON that does not parse
                message = str(exc) if isinstance(exc, FaultArgumentError) else f"body: not JSON ({exc})"
                await _respond(send, 400, {"detail": message})
                return
            await _respond(send, 200, self.injector.set(fault))
        else:
            await _respond(send, 405, {"detail": f"method {method} not allowed; use PUT, GET or DELETE"})


async def _respond(send, status: int, payload: dict, injected: bool = False) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if injected:
        headers.append((INJECTED_HEADER.lower().encode(), b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
