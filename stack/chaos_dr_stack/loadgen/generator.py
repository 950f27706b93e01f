"""The load generator: CUJ-1 users calling the processor API through its service address, at a steady rate.

Open loop: a request is started every ``1 / rate`` seconds whether or not the previous ones have answered, as
independent users would, so a slow or failing API does not slow the traffic down (and the error ratio Prometheus
sees stays the ratio injected). Requests alternate over ``paths``. Each outcome is counted by path and status;
a request that got no HTTP answer is counted with ``status="error"``, and by why in ``loadgen_errors``
(``refused``, ``reset``, ``timeout``, ``other``).

A request whose connection is refused is tried again at once on a new connection, up to ``CONNECT_ATTEMPTS`` in
all, as an ingress proxy tries a connect failure on another endpoint (nginx ``proxy_next_upstream error``, Envoy
``retry_on: connect-failure``): it never reached a server, so nothing runs twice. The retries are counted
(``loadgen_connect_retries``). Locally the stack's balancer does the same; a Kubernetes Service does not, so right
after a replica's SIGKILL, until its endpoint is removed, the connections kube-proxy sends to it are refused. Those
proxies skip the endpoint that refused; kube-proxy picks at random again, so with one of two replicas dead a request
still fails when every attempt lands on the dead one: 1 in 2^attempts.

Each outcome is also kept, with its wall-clock start, in a bounded buffer that ``outcomes_between`` reads: the
counters only say what happened since the start, and a probe judging CUJ-1 over a fault window needs exactly the
requests sent during it (Prometheus' view of the counters is one scrape coarse and extrapolated).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Sequence

import httpx
from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

DEFAULT_PATHS = ("/gpu/info", "/health")
MAX_RATE = 1000.0
MAX_IN_FLIGHT = 200
"""Requests allowed in flight at once; beyond that a tick is skipped and counted, rather than piling up tasks."""
REQUEST_TIMEOUT = 2.0
"""Seconds a user waits for an answer: ten times SLO-2's 200 ms."""
CONNECT_ATTEMPTS = 6
"""Connections tried per request while they are refused (a dead endpoint still in the Service's rotation). With one
of two replicas dead, 1 request in 64 still fails. With 3 attempts (1 in 8) a CI run's pod kill on kind lost 3 of
400 requests, over SLO-1's 0.5 %."""

ERROR_KINDS = ("refused", "reset", "timeout", "other")

MAX_OUTCOMES = 100_000
"""Outcomes kept for windowed reads: 83 min at the default 20 requests/s, 100 s at the 1000/s maximum. About 100 B
each. A window older than the buffer is reported incomplete, never silently shortened."""

REQUESTS = Counter("loadgen_requests", "Requests the load generator sent, by path and outcome status", ["path", "status"])
SKIPPED = Counter("loadgen_skipped", "Requests not sent because too many were already in flight")
ERRORS = Counter("loadgen_errors", "Requests that got no HTTP answer, by path and why: " + ", ".join(ERROR_KINDS),
                 ["path", "kind"])
CONNECT_RETRIES = Counter("loadgen_connect_retries", "Requests tried again on a new connection after a refused one",
                          ["path"])
TARGET_RATE = Gauge("loadgen_target_rate", "Configured requests per second")
IN_FLIGHT = Gauge("loadgen_in_flight", "Requests sent and not answered yet")
LATENCY = Histogram(
    "loadgen_request_duration_seconds", "Latency seen by the load generator, answered requests only", ["path"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.0),
)


def validate_rate(rate: float) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= MAX_RATE:
        raise ValueError(f"rate must be a number within [0, {MAX_RATE:g}] requests per second, got {rate!r}")
    return float(rate)


class LoadGenerator:
    def __init__(self, target: str, rate: float, paths: Sequence[str] = DEFAULT_PATHS):
        if not paths:
            raise ValueError("paths must name at least one path")
        self.target = target.rstrip("/")
        self.rate = validate_rate(rate)
        self.paths = tuple(paths)
        self.sent = 0
        self._rate_changed = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._client: httpx.AsyncClient | None = None
        self.outcomes: deque[tuple] = deque(maxlen=MAX_OUTCOMES)
        """(started_at wall-clock s, path, status "200"|..|"error", seconds until the answer or the failure), and for
        an error a fifth element: why, one of ERROR_KINDS."""
        self.evicted = 0
        self.started_at = time.time()
        TARGET_RATE.set(self.rate)

    def set_rate(self, rate: float) -> float:
        self.rate = validate_rate(rate)
        TARGET_RATE.set(self.rate)
        self._rate_changed.set()
        return self.rate

    def snapshot(self) -> dict:
        return {"target": self.target, "rate": self.rate, "paths": list(self.paths), "sent": self.sent,
                "in_flight": len(self._tasks)}

    def outcomes_between(self, since: float, until: float) -> dict:
        """The outcomes of the requests *started* in [since, until], oldest first, as ``[started_at, path, status,
        seconds]``, with ``kind`` after them for an error. ``complete`` is false when the buffer no longer reaches back to ``since`` (older outcomes were
        evicted); ``in_flight`` requests have no outcome yet (each ends within REQUEST_TIMEOUT)."""
        if not (math.isfinite(since) and math.isfinite(until)) or since > until:
            raise ValueError(f"since and until must be finite with since <= until, got since={since!r} until={until!r}")
        oldest = self.outcomes[0][0] if self.outcomes else None
        chosen = [list(o) for o in self.outcomes if since <= o[0] <= until]
        return {
            "since": since, "until": until, "outcomes": chosen, "oldest": oldest, "evicted": self.evicted,
            "complete": self.evicted == 0 or (oldest is not None and oldest <= since),
            "in_flight": len(self._tasks), "started_at": self.started_at, "timeout_s": REQUEST_TIMEOUT,
        }

    def _keep(self, outcome: tuple) -> None:
        if len(self.outcomes) == self.outcomes.maxlen:
            self.evicted += 1
        self.outcomes.append(outcome)

    async def run(self) -> None:
        # No keep-alive: each request takes a new connection through the service, so the balancer spreads the
        # load over every ready replica, as separate users' connections would be.
        limits = httpx.Limits(max_keepalive_connections=0, max_connections=MAX_IN_FLIGHT)
        async with httpx.AsyncClient(base_url=self.target, timeout=REQUEST_TIMEOUT, limits=limits) as client:
            self._client = client
            paths = itertools.cycle(self.paths)
            next_at = time.monotonic()
            try:
                while True:
                    if self.rate <= 0:
                        self._rate_changed.clear()
                        await self._rate_changed.wait()
                        next_at = time.monotonic()
                        continue
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        self._rate_changed.clear()
                        try:
                            await asyncio.wait_for(self._rate_changed.wait(), delay)
                            next_at = time.monotonic()  # new rate: start its schedule now
                            continue
                        except TimeoutError:
                            pass
                    next_at = max(next_at + 1.0 / self.rate, time.monotonic() - 1.0)  # no catch-up burst after a stall
                    if len(self._tasks) >= MAX_IN_FLIGHT:
                        SKIPPED.inc()
                        continue
                    task = asyncio.create_task(self._one(next(paths)))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            finally:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _get(self, path: str) -> httpx.Response:
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                return await self._client.get(path)
            except httpx.ConnectError:
                if attempt == CONNECT_ATTEMPTS:
                    raise
                CONNECT_RETRIES.labels(path).inc()
        raise AssertionError("unreachable")

    async def _one(self, path: str) -> None:
        self.sent += 1
        IN_FLIGHT.inc()
        started_at, started = time.time(), time.perf_counter()
        outcome: tuple = ("error", "other")
        try:
            response = await self._get(path)
        except httpx.HTTPError as error:
            outcome = ("error", error_kind(error))
            REQUESTS.labels(path, "error").inc()
            ERRORS.labels(path, outcome[1]).inc()
        else:
            outcome = (str(response.status_code),)
            LATENCY.labels(path).observe(time.perf_counter() - started)
            REQUESTS.labels(path, outcome[0]).inc()
        finally:
            IN_FLIGHT.dec()
            status, *kind = outcome
            self._keep((started_at, path, status, round(time.perf_counter() - started, 6), *kind))


def error_kind(error: httpx.HTTPError) -> str:
    """Why a request got no HTTP answer: ``refused`` (no connection made after every attempt: refused, or the host
    unreachable),
    ``reset`` (connected, then the server went away before answering, as a SIGKILLed replica's requests in flight do),
    ``timeout`` (no answer within REQUEST_TIMEOUT), or ``other``."""
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.ConnectError):
        return "refused"
    if isinstance(error, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
        return "reset"
    return "other"
