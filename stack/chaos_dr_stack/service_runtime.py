"""Plumbing every stack service shares: cached health checks, back-off, and running uvicorn so that SIGTERM
reaches the service's own shutdown code (the processor, producers, load generator, provider simulator, AI decision
and market data services); and the command-line start of the services that call the provider simulator."""
from __future__ import annotations

import argparse
import contextlib
import logging
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

import uvicorn

log = logging.getLogger(__name__)


class CachedCheck:
    """Runs ``check`` at most once per ``ttl`` seconds; concurrent callers share one run.

    A load test on /health must not turn into a load test on Mongo and Kafka.

    ``wait=False`` (stale-while-refreshing): once there is a first result, a caller never waits for the check; an
    expired result starts one refresh in the background (``spawn``, a daemon thread by default) and the caller gets
    the previous result. For a check that only informs (the processor's Kafka check): a broker that holds
    connections makes each check last its whole timeout, and a caller must not wait that long for a fact it does
    not act on."""

    def __init__(self, check: Callable[[], bool], ttl: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 wait: bool = True, spawn: Callable[[Callable[[], None]], None] | None = None):
        self._check = check
        self._ttl = ttl
        self._clock = clock
        self._wait = wait
        self._spawn = spawn or (lambda run: threading.Thread(target=run, name="cached-check", daemon=True).start())
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._refreshing = False
        self._value = False
        self._at: float | None = None

    def __call__(self) -> bool:
        if self._wait or self._at is None:
            return self._run()
        with self._refresh_lock:
            if self._clock() - self._at >= self._ttl and not self._refreshing:
                self._refreshing = True
                self._spawn(self._refresh)
            return self._value

    def _refresh(self) -> None:
        try:
            self._run()
        finally:
            with self._refresh_lock:
                self._refreshing = False

    def _run(self) -> bool:
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self._ttl:
                try:
                    self._value = bool(self._check())
                except Exception:  # a health check reports down; it never raises into the endpoint
                    log.debug("health check failed", exc_info=True)
                    self._value = False
                self._at = self._clock()
            return self._value


def backoff_delay(attempt: int, *, base: float = 0.1, cap: float = 5.0, jitter: Callable[[], float] = random.random) -> float:
    """Exponential back-off with "equal jitter": between half and all of ``min(cap, base * 2**attempt)``."""
    ceiling = min(cap, base * (2 ** max(attempt, 0)))
    return ceiling / 2 + jitter() * ceiling / 2


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises SIGTERM after its shutdown, which would end the process with -15 before
        # our consumer has committed and left the group. Signals are handled by serve() instead.
        yield


def serve(app, host: str, port: int, on_signal: Callable[[int], None], graceful_timeout: float = 2.0) -> None:
    """Run uvicorn in this (main) thread. SIGTERM/SIGINT call ``on_signal`` and then stop the server."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=graceful_timeout
    )
    server = _Server(config)

    received: list[int] = []

    def handler(signum: int, _frame) -> None:
        # Once only. A runner's death sends several SIGTERMs within milliseconds, and Python runs a handler for the
        # next one inside this one: re-entered in the middle of a threading.Event.set(), it waited for good on the
        # lock the interrupted call held. The append comes first because it is atomic against that re-entry.
        received.append(signum)
        if len(received) > 1:
            return
        log.info("received %s", signal.Signals(signum).name)
        on_signal(signum)
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    server.run()


def positive(text: str) -> float:
    """An argparse type: a number > 0."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_provider_client_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every service that calls the provider simulator takes: where it listens, where the providers are."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--providers-url", required=True, help="base URL of the provider simulator (or a gateway)")
    parser.add_argument("--log-level", default="INFO")


def start_logging(service: str, level: str) -> None:
    """Log to stderr under the service's name, without httpx's line per request (the provider calls are counted in
    metrics), and without prometheus_client's *_created series: twice the scrape for nothing the SLOs read."""
    from prometheus_client import disable_created_metrics

    disable_created_metrics()
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
