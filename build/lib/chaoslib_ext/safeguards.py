"""A safeguard control: abort the experiment early when a hard limit is crossed; its rollbacks still run.

It watches the processor API from the start of the method until the rollbacks begin. When no request has been
answered (every probe a 5xx or no answer at all) for longer than ``max_outage_seconds``, it records
``safeguard.tripped`` in the run's timeline and asks Chaos Toolkit to stop *gracefully* (``exit_gracefully``:
SIGUSR1, which chaoslib turns into an interruption that still plays the rollbacks). ``gameday`` then judges the
run SAFEGUARD_TRIPPED, with its own exit code, instead of a plain interruption. Declare it with::

    controls:
      - name: gameday-safeguard
        provider:
          type: python
          module: chaoslib_ext.safeguards
          arguments: {max_outage_seconds: 30}

The configuration key ``safeguard_max_outage_seconds`` (e.g. ``--var safeguard_max_outage_seconds=5``)
overrides the argument, so a suite can tighten it without editing the experiment.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from chaoslib.exit import exit_gracefully
from chaoslib.types import Configuration

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number

__all__ = ["configure_control", "before_method_control", "before_rollback_control", "after_experiment_control",
           "cleanup_control"]

log = logging.getLogger("chaostoolkit")
TRIPPED = "safeguard.tripped"


@dataclass(frozen=True)
class Limits:
    max_outage_seconds: float
    interval_seconds: float
    path: str


class OutageGuard:
    """Polls ``url`` every ``interval`` s; calls ``trip(outage_seconds)`` once an outage outlasts the limit."""

    def __init__(self, url: str, limits: Limits, trip, clock=time.monotonic):
        self.url = url
        self.limits = limits
        self._trip = trip
        self._clock = clock
        self._stop = threading.Event()
        self.tripped = False
        self._thread = threading.Thread(target=self._watch, name="gameday-safeguard", daemon=True)

    def start(self) -> OutageGuard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _answered(self, client: httpx.Client) -> bool:
        try:
            return client.get(self.url).status_code < 500
        except httpx.HTTPError:
            return False

    def _watch(self) -> None:
        outage_since: float | None = None
        timeout = max(0.2, min(2.0, self.limits.interval_seconds * 2))
        with httpx.Client(timeout=timeout) as client:
            while not self._stop.is_set():
                now = self._clock()
                if self._answered(client):
                    outage_since = None
                else:
                    outage_since = now if outage_since is None else outage_since
                    if now - outage_since > self.limits.max_outage_seconds:
                        self.tripped = True
                        self._trip(round(now - outage_since, 2))
                        return
                self._stop.wait(self.limits.interval_seconds)


_settings: dict[str, Any] = {}
_guard: OutageGuard | None = None


def _positive(name: str, value: Any) -> float:
    # Configuration read from the environment arrives as text.
    return number(f"safeguard {name}", value, greater_than=0, text_allowed=True)


def configure_control(configuration: Configuration = None, max_outage_seconds: float = 30.0,
                      interval_seconds: float = 0.5, path: str = "/health", **kwargs: Any) -> None:
    configured = (configuration or {}).get("safeguard_max_outage_seconds")
    _settings["limits"] = Limits(
        max_outage_seconds=_positive("max_outage_seconds", configured if configured is not None else max_outage_seconds),
        interval_seconds=_positive("interval_seconds", interval_seconds),
        path=path if str(path).startswith("/") else f"/{path}",
    )


def before_method_control(context: Any, configuration: Configuration = None, secrets: Any = None, **kwargs: Any) -> None:
    global _guard
    from chaoslib_ext.targets import from_configuration

    limits: Limits = _settings.get("limits") or Limits(30.0, 0.5, "/health")
    with from_configuration(configuration, secrets) as target:
        url = target.endpoint("processor_api") + limits.path

    def trip(outage_seconds: float) -> None:
        timeline.record(TRIPPED, configuration, limit="max_outage_seconds", limit_seconds=limits.max_outage_seconds,
                        outage_seconds=outage_seconds, url=url,
                        reason=f"processor API answered nothing but errors for {outage_seconds} s "
                               f"(limit {limits.max_outage_seconds:g} s)")
        log.critical("safeguard tripped: processor API down for %.1f s > %g s; aborting, rollbacks will run",
                     outage_seconds, limits.max_outage_seconds)
        exit_gracefully()

    _guard = OutageGuard(url, limits, trip).start()


def before_rollback_control(context: Any, **kwargs: Any) -> None:
    # A signal during rollbacks would make chaoslib skip the rest of them: the guard never outlives the method
    # and the steady-state check after it.
    cleanup_control()


def after_experiment_control(context: Any, state: Any = None, configuration: Configuration = None, **kwargs: Any) -> None:
    cleanup_control()


def cleanup_control() -> None:
    global _guard
    if _guard is not None:
        _guard.stop()
        _guard = None
