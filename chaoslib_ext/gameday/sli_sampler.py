"""Samples the served SLIs from Prometheus while experiments run: for the progress line and the report's plots.

The timeline holds what actions and probes saw at their own moments; the SLIs *between* those moments (how far
availability fell during a fault, how latency moved) are only in Prometheus, which may be gone by the time
anyone reads the report. So a background thread queries them every few seconds and appends each sample to
``sli.jsonl`` in the run directory. A target that does not answer is not an error here: the experiments' own
probes judge reachability; the sampler records the failure once and keeps trying.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SLI_FILE = "sli.jsonl"
DEFAULT_INTERVAL_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 30.0
DEFAULT_WINDOW = "10s"
"""Short enough to show a fault of a few seconds; the local Prometheus scrapes every second."""

SLIS = {
    "availability": ("availability_ratio", "processor-availability"),
    "latency_p95_s": ("latency_p95_seconds", "processor-latency"),
}
"""Sample field -> (function in chaoslib_ext.sli, SLO name in the spec)."""


def sample_once(configuration: Mapping[str, Any], window: str = DEFAULT_WINDOW) -> tuple[dict[str, Any], dict[str, str]]:
    """One sample of every SLI through the SLO probes: ``({"at", "availability", "latency_p95_s"}, queries)``,
    None where Prometheus had no data. The probes also say which PromQL they ran, so later samples reuse it
    without loading the SLO spec again (the one definition of each query stays in chaoslib_ext.sli)."""
    from chaoslib_ext import sli

    sample: dict[str, Any] = {"at": time.time()}
    queries = {}
    for field, (func, _slo) in SLIS.items():
        result = getattr(sli, func)(window=window, configuration=dict(configuration))
        sample[field], queries[field] = result["value"], result["query"]
    return sample, queries


def _value(target: Any, query: str) -> float | None:
    from chaoslib_ext.sli import first_value

    value = first_value(target, query)
    return None if value is None else round(value, 6)


class SliSampler:
    """A daemon thread sampling the SLIs into ``path`` every ``interval`` seconds until stopped."""

    def __init__(self, configuration: Mapping[str, Any], path: Path | None = None,
                 interval: float = DEFAULT_INTERVAL_SECONDS, window: str = DEFAULT_WINDOW):
        self.configuration = dict(configuration)
        self.path = path
        self.interval = interval
        self.window = window
        self.latest: dict[str, Any] | None = None
        self.error: str | None = None
        self._queries: dict[str, str] | None = None
        self._target: Any = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="sli-sampler", daemon=True)

    def retarget(self, path: Path | None) -> None:
        """Write the following samples to ``path`` (one file per experiment's run directory)."""
        with self._lock:
            self.path = path

    def start(self) -> SliSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> SliSampler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _sample(self) -> dict[str, Any]:
        # A 2-core machine runs the whole stack: after the first sample, no spec parsing and no new clients.
        if self._queries is None:
            sample, self._queries = sample_once(self.configuration, self.window)
            return sample
        if self._target is None:
            from chaoslib_ext.targets import from_configuration

            self._target = from_configuration(self.configuration)
        sample: dict[str, Any] = {"at": time.time()}
        for field, query in self._queries.items():
            sample[field] = _value(self._target, query)
        return sample

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                sample = self._sample()
            except Exception as exc:  # noqa: BLE001 - any failure only means no sample this time
                self.error = f"{type(exc).__name__}: {exc}"
                failures += 1
                # Never reached (no stack, no Prometheus): back off instead of parsing the spec every 2 s for
                # nothing. Once it has answered, keep the pace: a gap during a fault would hide what the fault did.
                never_answered = self._queries is None
                self._stop.wait(min(MAX_BACKOFF_SECONDS, self.interval * 2 ** min(failures, 5)) if never_answered
                                else self.interval)
                continue
            else:
                failures = 0
                self.error = None
                self.latest = sample
                with self._lock:
                    if self.path is not None:
                        self.path.parent.mkdir(parents=True, exist_ok=True)
                        with self.path.open("a", encoding="utf-8") as out:
                            out.write(json.dumps(sample, sort_keys=True) + "\n")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        if self._target is not None:
            self._target.close()


def describe(sample: Mapping[str, Any] | None) -> str:
    """``availability 99.87% p95 0.012s`` for a progress line; ``SLI n/a`` without a sample."""
    if not sample:
        return "SLI n/a"
    availability = sample.get("availability")
    latency = sample.get("latency_p95_s")
    parts = ["availability " + ("n/a" if availability is None else f"{availability * 100:.2f}%"),
             "p95 " + ("n/a" if latency is None else f"{latency:.3f}s")]
    return " ".join(parts)
