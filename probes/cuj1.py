"""CUJ-1 (retrieve the latest GPU info: Processor API -> Mongo) judged over the window in which this run's faults
were in force, from two views:

- **client**: the load generator's own outcomes (``GET /outcomes`` of chaos_dr_stack.loadgen), the requests CUJ-1's users
  started in the window, through the API service (the balancer locally, the Service on Kubernetes). A refused or
  reset connection counts here and nowhere else: the server never saw it.
- **server**: the served SLIs of SLO-1 and SLO-2 (starlette_exporter's ``starlette_requests_total`` and
  ``starlette_request_duration_seconds_bucket``, the selectors of ``deploy/monitoring/slos.yaml``), from
  Prometheus' raw samples over the same window. It counts every request the replicas answered, the readiness
  checks' ``/health`` included.

The arithmetic is in probes.windows (pure). The window comes from the run's timeline (chaoslib_ext.timeline).
"""
from __future__ import annotations

import math
import re
import time

import httpx
from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number, whole_number
from chaoslib_ext.errors import InvalidArgument, NoData, TargetUnreachable
from chaoslib_ext.slo.model import EventsSLI, LatencySLI
from chaoslib_ext.targets import Target, from_configuration
from probes import windows
from probes._clients import prometheus_query

__all__ = ["cuj1_during_fault"]

SETTLE_SECONDS = 3.0
"""Wait this long past the window's end before reading it: a request started at the end has its outcome within the
load generator's 2 s timeout, and Prometheus scrapes every second (locally)."""
MIN_BASELINE_SECONDS = 5.0
"""The shortest baseline judged (100 requests at 20/s): the baseline starts no earlier than the run, whose first
probes may have taken only a moment."""
BASELINE_POLL_SECONDS = 2.0
"""How often a failing baseline is read again while it may settle."""
LOOKBACK_SECONDS = 60
"""How far before the window Prometheus' samples are read, to find each counter's value at the start: at least two
scrape intervals on every target (1 s locally, 30 s on Kubernetes)."""
SLO_1 = "processor-availability"
SLO_2 = "processor-latency"
_RATE_SELECTOR = re.compile(r"rate\((?P<selector>[^\[]+)\[\{\{\.window\}\}\]\)")


def _selectors(configuration: Configuration) -> tuple[str, str]:
    """SLO-1's request counter and SLO-2's bucket selector, from the one SLO spec the alerts are generated from."""
    from chaoslib_ext.sli import catalog as slo_catalog

    catalog = slo_catalog(configuration)
    availability, latency = catalog.slo(SLO_1).sli, catalog.slo(SLO_2).sli
    assert isinstance(availability, EventsSLI) and isinstance(latency, LatencySLI)
    found = _RATE_SELECTOR.search(availability.total_query)
    if found is None:
        raise InvalidArgument(f"cannot find the request counter in {SLO_1}'s total_query {availability.total_query!r}")
    return found["selector"].strip(), latency.bucket_query.strip()


def _client(target: Target, start: float, end: float) -> dict:
    url = target.endpoint("loadgen") + "/outcomes"
    try:
        response = httpx.get(url, params={"since": f"{start:.6f}", "until": f"{end:.6f}"}, timeout=10.0)
    except httpx.HTTPError as exc:
        raise TargetUnreachable(f"the load generator at {url} did not answer: {exc}") from exc
    if response.status_code != 200:
        raise TargetUnreachable(f"the load generator at {url} answered {response.status_code}: {response.text[:200]}")
    body = response.json()
    view = windows.client_view(body["outcomes"], start, end)
    view["complete"] = bool(body.get("complete"))
    if not view["complete"]:
        view["requests"] = 0  # a partial window is no evidence: judged NO_DATA, never a pass
        view["incomplete"] = f"the load generator's buffer starts at {body.get('oldest')}, after the window's start"
    return view


def _server(target: Target, requests_selector: str, buckets_selector: str, start: float, end: float) -> dict:
    span = math.ceil(end - start) + LOOKBACK_SECONDS
    requests = prometheus_query(target, f"{requests_selector}[{span}s]", timeout=10.0, at=end)
    buckets = prometheus_query(target, f"{buckets_selector}[{span}s]", timeout=10.0, at=end)
    return windows.server_view(requests, buckets, start, end)


def cuj1_during_fault(
    min_availability: float = 0.995, max_p95_seconds: float = 0.2, max_client_p95_seconds: float = 1.0,
    baseline_seconds: float = 30.0,
    min_window_seconds: float = 0.0, min_requests: int = 1, baseline_settle_timeout: float = 0.0,
    configuration: Configuration = None, secrets: Secrets = None,
) -> dict:
    """CUJ-1's availability (2xx share) and p95 latency over the window in which this run's faults were in force,
    client side (the load generator) and server side (Prometheus), each judged against ``min_availability``
    (SLO-1: 0.995). Latency is judged as SLO-2 defines it, on the served histogram, against ``max_p95_seconds``
    (0.2). The client's p95 adds the balancer's hop and the load generator's own scheduling, which on a shared
    machine grow with everything else running there (a CI worker beside the stack put it at 0.51 s while the SLI
    read 0.068 s): it is reported, and judged only against the looser ``max_client_p95_seconds`` (1 s), which
    still catches a balancer that holds requests for a dead replica.

    The window runs from the run's first ``fault.*`` to the latest moment any fault ended: its ``fault.healed`` or
    ``expires_at``, a killed replica's ``observation.recovered`` (or the next ``observation.group_settled``), a
    destroyed database's finished ``action.restore``; a fault nothing has ended keeps it open until now; it lasts at
    least ``min_window_seconds`` (a replica may recover in 1.5 s: 30 requests cannot resolve 99.5 %). The probe
    waits until ``SETTLE_SECONDS`` past the end, so every request started in the window has its outcome. Before the
    method (no fault yet) it judges the last ``baseline_seconds`` instead, the figures a fault is compared with, but
    none from before this run started (an earlier experiment's fault is not this one's baseline), and at least
    ``MIN_BASELINE_SECONDS`` of it. A baseline that fails is read again, over a window of the same length sliding
    forward every ``BASELINE_POLL_SECONDS``, for up to ``baseline_settle_timeout`` seconds: on a long-lived stack the
    previous experiment may have left a backlog the database is still writing (``baseline_settled_s`` says how long
    it took). The fault window is judged once: what users saw during the fault is not retried.

    Returns ``{"phase": "fault"|"baseline", "window", "client", "server", "client_availability", "client_p95_s",
    "server_availability", "server_p95_s", "objective", "verdict": PASS|FAIL|NO_DATA, "failures"}`` (and
    ``baseline_settled_s``, ``baseline_reads`` in a baseline); each failure
    names the view, the value and the bound. A view with fewer than ``min_requests`` requests is NO_DATA. Raises
    NoData when the method ran but recorded no fault, TargetUnreachable when the load generator or Prometheus does
    not answer, InvalidArgument (before anything) for a bad argument. Records ``observation.cuj1``."""
    min_availability = number("min_availability", min_availability, at_least=0.0, at_most=1.0)
    max_p95_seconds = number("max_p95_seconds", max_p95_seconds, at_least=0.001, at_most=3600.0)
    max_client_p95_seconds = number("max_client_p95_seconds", max_client_p95_seconds, at_least=0.001, at_most=3600.0)
    baseline_seconds = number("baseline_seconds", baseline_seconds, at_least=1.0, at_most=3600.0)
    min_window_seconds = number("min_window_seconds", min_window_seconds, at_least=0.0, at_most=3600.0)
    baseline_settle_timeout = number("baseline_settle_timeout", baseline_settle_timeout, at_least=0.0, at_most=3600.0)
    whole_number("min_requests", min_requests, at_least=1)
    requests_selector, buckets_selector = _selectors(configuration)

    run = timeline.current_run(configuration)
    window = windows.fault_window(run, now=time.time(), min_seconds=min_window_seconds)
    if window is None:
        if timeline.method_started(run):
            raise NoData("the method ran but no fault was recorded in this run: CUJ-1 has no fault window to judge")
        window, read_at = windows.baseline_window(time.time(), timeline.run_started_at(configuration),
                                                  baseline_seconds, SETTLE_SECONDS, MIN_BASELINE_SECONDS)
        phase = "baseline"
    else:
        phase = "fault"
        read_at = window.end + SETTLE_SECONDS
    time.sleep(max(0.0, read_at - time.time()))

    settle_deadline = time.monotonic() + (baseline_settle_timeout if phase == "baseline" else 0.0)
    settle_started, reads = time.monotonic(), 0
    with from_configuration(configuration, secrets) as target:
        while True:
            client = _client(target, window.start, window.end)
            server = _server(target, requests_selector, buckets_selector, window.start, window.end)
            verdict, failures = windows.judge(
                {"client": client, "server": server}, min_availability,
                {"client": max_client_p95_seconds, "server": max_p95_seconds}, min_requests)
            reads += 1
            if verdict == "PASS" or time.monotonic() + BASELINE_POLL_SECONDS > settle_deadline:
                break
            time.sleep(BASELINE_POLL_SECONDS)
            end = time.time() - SETTLE_SECONDS
            window = windows.FaultWindow(start=end - window.seconds, end=end, faults=(), ended_by="baseline")
    result = {
        "phase": phase, "window": window.as_dict(), "client": client, "server": server,
        "client_availability": client["availability"], "client_p95_s": client["p95_s"],
        "server_availability": server["availability"], "server_p95_s": server["p95_s"],
        "objective": {"availability": f">= {min_availability:g}", "p95_s": f"<= {max_p95_seconds:g}",
                      "client_p95_s": f"<= {max_client_p95_seconds:g}"},
        "verdict": verdict, "failures": failures,
    }
    if phase == "baseline":
        result.update(baseline_settled_s=round(time.monotonic() - settle_started, 3), baseline_reads=reads)
    timeline.record("observation.cuj1", configuration, phase=phase, window=window.as_dict(), verdict=verdict,
                    **{k: result[k] for k in ("client_availability", "client_p95_s", "server_availability",
                                              "server_p95_s")})
    return result
