"""Database-outage probes: does ``/health`` tell the truth while the database is gone, how long until users are
served again once it is back, and what the outage cost CUJ-1's users in error budget."""
from __future__ import annotations

import time

import httpx
from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number
from chaoslib_ext.errors import BudgetExceeded, InvalidArgument, NoData, TargetUnreachable
from chaoslib_ext.targets import from_configuration

__all__ = ["health_during_outage", "health_during_outage_report", "api_recovery_seconds", "api_recovery_report",
           "availability_burn"]

HEALTH_CACHE_SECONDS = 1.0
"""How old the processor's /health answer may be (its CachedCheck ttl)."""
RECOVERY_POLL_SECONDS = 0.25


def _this_runs_outage(configuration: Configuration) -> dict | None:
    """The newest ``fault.database_outage`` of this run; None before the method, NoData if the method recorded none."""
    outages = timeline.faults_of_this_run(("fault.database_outage",), configuration)
    return max(outages, key=lambda e: e["at"]) if outages else None


def health_during_outage(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """While the newest ``fault.database_outage`` of the run is in force, poll every processor replica's own
    ``/health`` until the outage's expiry: does each answer 503 with ``"mongo": false``?

    Returns ``{"samples", "truthful", "lying": [...up to 10], "unanswered"}``: ``lying`` are 200s or a 503 that
    does not name mongo. Before the method it returns ``{"samples": 0, "lying": []}``."""
    outage = _this_runs_outage(configuration)
    if outage is None:
        return {"samples": 0, "truthful": 0, "lying": [], "unanswered": 0}
    samples = truthful = unanswered = 0
    lying: list[str] = []
    with from_configuration(configuration, secrets) as target:
        replicas = target.instances("processor")
        # The processor caches each health check for 1 s (chaos_dr_stack.processor.runtime.CachedCheck, by design,
        # so a load test on /health is not one on Mongo): an answer may be that old, so judging starts once it
        # cannot predate the outage.
        time.sleep(max(0.0, float(outage["at"]) + HEALTH_CACHE_SECONDS + 0.5 - time.time()))
        # Stop a second early: the runner starts the database at the expiry, and then 200 is the truth.
        while time.time() < float(outage["expires_at"]) - 1.0:
            for replica in replicas:
                try:
                    status, body = target.ask_replica(replica, "/health")
                except TargetUnreachable:
                    unanswered += 1
                    continue
                samples += 1
                if status == 503 and body.get("mongo") is False:
                    truthful += 1
                elif len(lying) < 10:
                    lying.append(f"{replica.name}: {status} {body}")
            time.sleep(1.0)
    result = {"samples": samples, "truthful": truthful, "lying": lying, "unanswered": unanswered}
    timeline.record("observation.outage_health", configuration, **result)
    return result


def health_during_outage_report(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """What ``health_during_outage`` observed in this run, for the steady state to judge (``lying`` must be
    empty, ``lies`` 0). Before the method: ``{"samples": 0, "lies": 0, "lying": []}``. After it, NoData when nothing was sampled: an
    outage nobody looked at proves nothing."""
    run = timeline.current_run(configuration)
    observed = [e for e in run if e.get("kind") == "observation.outage_health"]
    if not observed:
        if timeline.method_started(run):
            raise NoData("no observation.outage_health in this run: health_during_outage did not run")
        return {"samples": 0, "truthful": 0, "lies": 0, "lying": [], "unanswered": 0}
    last = observed[-1]
    if not last.get("samples"):
        raise NoData("no processor replica answered /health during the outage")
    return {"lies": last["samples"] - last["truthful"], **{k: last.get(k) for k in ("samples", "truthful", "lying",
                                                                                  "unanswered")}}


def api_recovery_seconds(path: str = "/health", timeout: float = 300.0, configuration: Configuration = None,
                         secrets: Secrets = None) -> float:
    """How long users wait after the database comes back: from the end of this run's ``fault.database_outage``
    (its expiry, when the target starts the database again) to the first 200 from the processor API's ``path``
    through the balancer, polled every 0.25 s with a 2 s timeout, as a user would. The processors write their
    backlog to the database first, so this is longer than the database's own start.

    Records ``observation.api_recovery``; returns the seconds (0.0 before the method). BudgetExceeded when no 200
    came within ``timeout`` seconds of the expiry."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidArgument(f"path must start with '/', got {path!r}")
    timeout = number("timeout", timeout, greater_than=0, at_most=3600)
    outage = _this_runs_outage(configuration)
    if outage is None:
        return 0.0
    back_at = float(outage["expires_at"])
    time.sleep(max(0.0, back_at - time.time()))
    with from_configuration(configuration, secrets) as target:
        url = target.endpoint("processor_api") + path
    last = "nothing asked yet"
    while time.time() < back_at + timeout:
        try:
            response = httpx.get(url, timeout=2.0)
            last = f"{response.status_code} {response.text[:200]}"
            if response.status_code == 200:
                seconds = round(time.time() - back_at, 3)
                timeline.record("observation.api_recovery", configuration, seconds=seconds, path=path)
                return seconds
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(RECOVERY_POLL_SECONDS)
    raise BudgetExceeded(f"{path} through the balancer did not answer 200 within {timeout:g} s of the database "
                         f"coming back; last answer: {last}")


def api_recovery_report(configuration: Configuration = None, secrets: Secrets = None) -> float:
    """What ``api_recovery_seconds`` measured in this run, for the steady state to judge against a budget. Before
    the method: 0.0. After it, NoData when nothing was measured."""
    run = timeline.current_run(configuration)
    measured = [e for e in run if e.get("kind") == "observation.api_recovery"]
    if measured:
        return float(measured[-1]["seconds"])
    if timeline.method_started(run):
        raise NoData("no observation.api_recovery in this run: api_recovery_seconds did not run or never saw a 200")
    return 0.0


def availability_burn(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """What the run cost CUJ-1's users: the share of the load generator's requests since the run started that got
    no 2xx (no answer counts as an error), and the burn rate against SLO-1's 99.5 % (1.0 spends the budget exactly
    over the SLO period). Returns ``{"window_seconds", "requests", "error_ratio", "burn_rate"}``; NoData when no
    request was counted."""
    from probes._clients import prometheus_query

    started = timeline.run_started_at(configuration)
    window = max(10, int(time.time() - started) + 1) if started else 300
    with from_configuration(configuration, secrets) as target:
        total = prometheus_query(target, f"sum(increase(loadgen_requests_total[{window}s]))")
        bad = prometheus_query(target, f'sum(increase(loadgen_requests_total{{status!~"2.."}}[{window}s]))')
    requests = float(total[0]["value"][1]) if total else 0.0
    if requests <= 0:
        raise NoData(f"the load generator counted no request in the last {window} s")
    errors = float(bad[0]["value"][1]) if bad else 0.0
    ratio = errors / requests
    result = {"window_seconds": window, "requests": round(requests, 1), "error_ratio": round(ratio, 5),
              "burn_rate": round(ratio / (1 - 0.995), 3)}
    timeline.record("observation.availability_burn", configuration, **result)
    return result
