"""Burn-rate alert drills: when does an alert fire, reach Alertmanager and the webhook after this run's fault,
when does it resolve after the heal, and does it stay silent when the error ratio is below its threshold?

Every probe reads the run's timeline (``fault.http_errors``, ``fault.healed``) to find what it measures from, and
states its phase the way ``probes.recovery`` does: before the method (no fault in this run yet) it checks the
baseline (the alert is not active now), and after the method a missing fault is ``NoData``, never a pass.
A measurement made live during the method is recorded in the timeline (``observation.alert_fired``,
``observation.alert_resolved``); the same probe in the steady-state hypothesis after the method returns that record
for the same fault, or measures live if there is none, so the tolerance always judges a real measurement.

Predictions come from ``chaoslib_ext.slo.predict`` with the alert's windows, threshold and ``for:`` from the SLO
spec (the drill copy for ``profile="drill"``) and the timings the stack really runs with: scrape and evaluation
intervals from Prometheus' loaded configuration, group_wait and group_interval from Alertmanager's.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import yaml
from chaoslib.types import Configuration, Secrets

from chaoslib_ext import slo, timeline
from chaoslib_ext.arguments import number
from chaoslib_ext.errors import BudgetExceeded, InvalidArgument, NoData, TargetMisconfigured, TargetUnreachable
from chaoslib_ext.slo.durations import Duration
from chaoslib_ext.slo.predict import time_to_fire, time_to_resolve
from chaoslib_ext.slo.rules import BurnAlert, burn_alerts, drill_copy, error_ratio_record
from chaoslib_ext.slo.spec import configured_path
from chaoslib_ext.targets import Target, from_configuration
from chaoslib_ext.targets.prometheus import prometheus_query

__all__ = ["alert_fire_seconds", "alert_resolve_seconds", "alert_stays_silent"]

POLL_SECONDS = 0.1
DELIVERY_SLACK_SECONDS = 0.5
"""Added to a prediction's upper bound when judging the webhook time: the model counts Prometheus's and
Alertmanager's intervals, not the HTTP hops from Prometheus to Alertmanager to the webhook, nor a rule evaluation's
own run time (seen in CI: the notification 1.004 s after Alertmanager had the alert, with a 1 s group_wait, landed
66 ms past the upper bound)."""
"""Resolution of the Prometheus, Alertmanager and webhook observations."""
HTTP_TIMEOUT = 2.0
PROFILES = ("drill", "production")
FAULT = "fault.http_errors"
HEALED = "fault.healed"


# ---- the alert and the stack's timings ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Alert:
    burn: BurnAlert
    profile: slo.Profile
    profile_name: str

    @property
    def threshold(self) -> float:
        return float(self.burn.threshold)

    def labels(self, alertname: str) -> dict[str, str]:
        return {"alertname": alertname, **({"profile": "drill"} if self.profile_name == "drill" else {})}


def _validate(alertname: Any, profile: Any) -> None:
    if not isinstance(alertname, str) or not alertname:
        raise InvalidArgument(f"alertname must be a non-empty string, got {alertname!r}")
    if profile not in PROFILES:
        raise InvalidArgument(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")


def _find_alert(alertname: str, profile: str, configuration: Configuration) -> tuple[BurnAlert, slo.Catalog]:
    path = configured_path(configuration)
    try:
        catalog = slo.load(path)
    except slo.SpecError as exc:
        raise TargetMisconfigured(f"the SLO spec {path} is not valid: {exc}") from exc
    if profile == "drill":
        catalog = drill_copy(catalog)
    for one in catalog.slos:
        for burn in burn_alerts(one):
            if burn.name == alertname:
                return burn, catalog
    raise InvalidArgument(f"no burn-rate alert named {alertname!r} in {path}")


def _get_json(url: str, **params: Any) -> Any:
    try:
        response = httpx.get(url, params=params or None, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise TargetUnreachable(f"{url} did not answer: {exc}") from exc


def _stack_profile(target: Target, base: slo.Profile) -> slo.Profile:
    """``base`` with the intervals and Alertmanager timers the running stack is configured with."""
    prometheus = yaml.safe_load(_get_json(target.endpoint("prometheus") + "/api/v1/status/config")["data"]["yaml"])
    am_status = _get_json(target.endpoint("alertmanager") + "/api/v2/status")
    route = (yaml.safe_load(am_status["config"]["original"]) or {}).get("route") or {}
    glob = prometheus.get("global") or {}
    return dataclasses.replace(
        base,
        scrape_interval=Duration.parse(glob.get("scrape_interval", "1m")),
        evaluation_interval=Duration.parse(glob.get("evaluation_interval", "1m")),
        group_wait=Duration.parse(route.get("group_wait", "30s")),
        group_interval=Duration.parse(route.get("group_interval", "5m")),
    )


def _alert(alertname: str, profile: str, target: Target, configuration: Configuration) -> _Alert:
    burn, catalog = _find_alert(alertname, profile, configuration)
    base = catalog.drill if profile == "drill" else catalog.production
    return _Alert(burn, _stack_profile(target, base), profile)


# ---- observations -------------------------------------------------------------------------------------------------

def _matches(labels: dict, wanted: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in wanted.items()):
        return False
    return "profile" in wanted or "profile" not in labels  # production: the alert without the drill label


def _unix(stamp: str | None) -> float | None:
    if not stamp or stamp.startswith("0001-"):
        return None
    head, _, frac = stamp.rstrip("Z").partition(".")
    value = datetime.fromisoformat(head + "+00:00").timestamp()
    return value + (float(f"0.{frac}") if frac else 0.0)


def _prometheus_alerts(target: Target, wanted: dict[str, str]) -> list[dict]:
    body = _get_json(target.endpoint("prometheus") + "/api/v1/alerts")
    return [a for a in body["data"]["alerts"] if _matches(a.get("labels", {}), wanted)]


def _alertmanager_alerts(target: Target, wanted: dict[str, str]) -> list[dict]:
    filters = [f'{k}="{v}"' for k, v in wanted.items()]
    body = _get_json(target.endpoint("alertmanager") + "/api/v2/alerts", filter=filters)
    return [a for a in body if _matches(a.get("labels", {}), wanted) and (a.get("status") or {}).get("state") == "active"]


def _notifications(target: Target, wanted: dict[str, str], status: str, since: float) -> list[float]:
    """received_at of every webhook notification since ``since`` that carries the alert with ``status``."""
    body = _get_json(target.endpoint("control") + "/alerts")
    return sorted(
        float(n["received_at"]) for n in body["notifications"]
        if float(n["received_at"]) >= since
        and any(a.get("status") == status and _matches(a.get("labels") or {}, wanted) for a in n.get("alerts", []))
    )


# ---- the run's phase ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Drill:
    """What every drill probe starts from: the alert, the open target, and this run's fault (None before the
    method, when the probe checks its baseline)."""

    alert: _Alert
    target: Target
    fault: dict | None
    run: list[dict]

    @property
    def onset(self) -> float:
        assert self.fault is not None
        return float(self.fault["at"])

    @property
    def ratio(self) -> float:
        assert self.fault is not None
        return float(self.fault["ratio"])


@contextlib.contextmanager
def _drill(alertname: Any, profile: Any, configuration: Configuration, secrets: Secrets) -> Iterator[_Drill]:
    """Validate the alert's name and profile, find this run's fault (phase-aware: ``timeline.faults_of_this_run``),
    and hold the target open for the probe's body."""
    _validate(alertname, profile)
    faults = timeline.faults_of_this_run({FAULT}, configuration, "no alert drill to measure")
    run = timeline.current_run(configuration)
    with from_configuration(configuration, secrets) as target:
        yield _Drill(_alert(alertname, profile, target, configuration), target, faults[-1] if faults else None, run)


def _baseline(target: Target, alert: _Alert, alertname: str, settle_timeout: float) -> dict:
    """Before the method: the alert must not be active already, or the drill could not be measured. An alert still
    pending or firing from an earlier experiment is read again every ``POLL_SECONDS`` for up to ``settle_timeout``
    seconds (``settled_after_s`` says how long it took to clear)."""
    started = time.monotonic()
    while True:
        active = [a["state"] for a in _prometheus_alerts(target, alert.labels(alertname))]
        waited = time.monotonic() - started
        if not active or waited >= settle_timeout:
            break
        time.sleep(POLL_SECONDS)
    return {"phase": "baseline", "alertname": alertname, "profile": alert.profile_name, "active_now": active,
            "settled_after_s": round(waited, 3), "within_prediction": not active}


def _recorded(run: list[dict], kind: str, alertname: str, fault_at: float) -> dict | None:
    for event in reversed(run):
        if event.get("kind") == kind and event.get("alertname") == alertname and event.get("fault_at") == fault_at:
            return event["result"]
    return None


def _s(at: float | None, since: float) -> float | None:
    return None if at is None else round(at - since, 3)


# ---- the probes ---------------------------------------------------------------------------------------------------

def alert_fire_seconds(
    alertname: str = "ProcessorAvailabilityBurnRateHigh",
    profile: str = "drill",
    timeout: float = 60.0,
    baseline_settle_timeout: float = 0.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Seconds from this run's newest ``fault.http_errors`` until ``alertname`` (with ``profile="drill"`` for the
    drill profile) is firing in Prometheus, is active in Alertmanager, and its notification reached the webhook.

    Returns ``{"fired_in_prometheus_s", "reached_alertmanager_s", "webhook_s", "predicted_lower_s",
    "predicted_upper_s", "accepted_lower_s", "within_prediction", ...}``. The prediction is
    ``chaoslib_ext.slo.predict.time_to_fire`` for the injected ratio; ``within_prediction`` holds when the webhook
    time is within [predicted lower − group_wait − scrape_interval, predicted upper + DELIVERY_SLACK_SECONDS]. The
    lower slack covers what the model leaves out: it adds a full group_wait, but an Alertmanager group left from an earlier drill flushes on
    its own timer instead; and rate() sees only the samples inside its window, which moves the crossing by up to
    one scrape interval.
    Before the method: ``{"phase": "baseline", "within_prediction": <the alert is not active now>}``; an alert
    still pending or firing from an earlier experiment (a negative drill's last seconds can leave one pending) is
    waited for up to ``baseline_settle_timeout`` seconds first.
    Raises NoData after the method without a fault, InvalidArgument when the injected ratio can never fire the
    alert, and BudgetExceeded, naming the stages not reached, ``timeout`` seconds after the fault.
    """
    timeout = number("timeout", timeout, greater_than=0)
    settle = number("baseline_settle_timeout", baseline_settle_timeout, at_least=0)
    with _drill(alertname, profile, configuration, secrets) as drill:
        target, alert = drill.target, drill.alert
        if drill.fault is None:
            return _baseline(target, alert, alertname, settle)
        onset, ratio = drill.onset, drill.ratio
        recorded = _recorded(drill.run, "observation.alert_fired", alertname, onset)
        if recorded is not None:
            return recorded
        bounds = time_to_fire(alert.burn.windows, alert.threshold, alert.burn.for_, ratio, alert.profile)
        if bounds is None:
            raise InvalidArgument(
                f"an error ratio of {ratio:g} never fires {alertname} (threshold {alert.threshold:g}); "
                "use alert_stays_silent for a negative drill")
        result = _watch_fire(target, alert, alertname, onset, timeout)
        accepted_lower = bounds.lower - alert.profile.group_wait.seconds - alert.profile.scrape_interval.seconds
        accepted_upper = bounds.upper + DELIVERY_SLACK_SECONDS
        result.update({
            "alertname": alertname, "profile": profile, "error_ratio": ratio, "threshold": alert.threshold,
            "predicted_lower_s": round(bounds.lower, 3), "predicted_upper_s": round(bounds.upper, 3),
            "accepted_lower_s": round(accepted_lower, 3), "accepted_upper_s": round(accepted_upper, 3),
            "within_prediction": accepted_lower <= result["webhook_s"] <= accepted_upper
            and not result["active_before_fault"],
        })
        timeline.record("observation.alert_fired", configuration, alertname=alertname, fault_at=onset, result=result)
        return result


def _watch_fire(target: Target, alert: _Alert, alertname: str, onset: float, timeout: float) -> dict:
    wanted = alert.labels(alertname)
    fired_at = am_at = webhook_at = None
    active_before = False
    first_poll = True
    while True:
        now = time.time()
        if fired_at is None:
            for a in _prometheus_alerts(target, wanted):
                active_at = _unix(a.get("activeAt"))
                if active_at is not None and active_at < onset - alert.profile.evaluation_interval.seconds:
                    active_before = True
                if a.get("state") == "firing":
                    # Seen turning to firing: now. Already firing at the first look: when `for:` ran out.
                    fired_at = now if not first_poll or active_at is None else active_at + alert.burn.for_.seconds
        if am_at is None:
            for a in _alertmanager_alerts(target, wanted):
                updated = _unix(a.get("updatedAt"))
                am_at = min(now, updated) if updated is not None and updated >= onset else now
        if webhook_at is None:
            received = _notifications(target, wanted, "firing", onset)
            webhook_at = received[0] if received else None
        first_poll = False
        if fired_at is not None and webhook_at is not None and (am_at is not None or now - webhook_at > 2):
            # The rule evaluation that fired it is stamped in the ALERTS series: exact, where polling lags.
            fired_at = min([fired_at, *_first_firing_evaluation(target, wanted, onset, now)])
            return {"fault_at": onset, "fired_in_prometheus_s": _s(fired_at, onset),
                    "reached_alertmanager_s": _s(am_at, onset), "webhook_s": _s(webhook_at, onset),
                    "active_before_fault": active_before}
        if now - onset > timeout:
            missing = [name for name, at in (("firing in Prometheus", fired_at), ("in Alertmanager", am_at),
                                              ("notified to the webhook", webhook_at)) if at is None]
            raise BudgetExceeded(f"{alertname} {{{', '.join(f'{k}={v!r}' for k, v in wanted.items())}}} not "
                                 f"{', '.join(missing)} {timeout:g} s after the fault")
        time.sleep(POLL_SECONDS)


def alert_resolve_seconds(
    alertname: str = "ProcessorAvailabilityBurnRateHigh",
    profile: str = "drill",
    timeout: float = 60.0,
    baseline_settle_timeout: float = 0.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Seconds from this run's ``fault.healed`` (after its newest ``fault.http_errors``) until ``alertname`` is no
    longer firing in Prometheus and the webhook received its "resolved" notification.

    Returns ``{"resolved_in_prometheus_s", "webhook_s", "predicted_lower_s", "predicted_upper_s",
    "accepted_lower_s", "within_prediction", ...}`` with ``chaoslib_ext.slo.predict.time_to_resolve``'s bounds;
    the accepted lower bound is one group_interval and one scrape interval lower: Alertmanager's group timer ticks
    on its own and sends "resolved" anywhere within one group_interval, where the model adds a full one, and
    rate()'s window holds samples, not a continuous interval (measured: 4.6–4.9 s against the model's 5.64 s).
    Before the method: the baseline check of ``alert_fire_seconds``. Raises NoData after the method when there was
    no fault, no heal after it, or the alert never fired for it (nothing to resolve), and BudgetExceeded after
    ``timeout`` seconds from the heal.
    """
    timeout = number("timeout", timeout, greater_than=0)
    settle = number("baseline_settle_timeout", baseline_settle_timeout, at_least=0)
    with _drill(alertname, profile, configuration, secrets) as drill:
        target, alert, run = drill.target, drill.alert, drill.run
        if drill.fault is None:
            return _baseline(target, alert, alertname, settle)
        onset, ratio = drill.onset, drill.ratio
        heals = [e for e in run if e.get("kind") == HEALED and float(e["at"]) >= onset]
        if not heals:
            raise NoData(f"no {HEALED} after the {FAULT} of this run: nothing to measure the resolution from")
        healed_at = float(heals[0]["at"])
        recorded = _recorded(run, "observation.alert_resolved", alertname, onset)
        if recorded is not None:
            return recorded
        wanted = alert.labels(alertname)
        if not [t for t in _notifications(target, wanted, "firing", onset) if t <= healed_at + 5]:
            raise NoData(f"{alertname} never notified 'firing' for this run's fault: nothing to resolve")
        bounds = time_to_resolve(alert.burn.windows, alert.threshold, ratio, alert.profile)
        resolved_at = webhook_at = None
        while True:
            now = time.time()
            if resolved_at is None and not [a for a in _prometheus_alerts(target, wanted) if a["state"] == "firing"]:
                resolved_at = now
            if webhook_at is None:
                received = _notifications(target, wanted, "resolved", healed_at)
                webhook_at = received[0] if received else None
            if resolved_at is not None and webhook_at is not None:
                break
            if now - healed_at > timeout:
                raise BudgetExceeded(
                    f"{alertname} not resolved {timeout:g} s after the heal: "
                    + ("still firing in Prometheus" if resolved_at is None else "no 'resolved' notification"))
            time.sleep(POLL_SECONDS)
        webhook_s = round(webhook_at - healed_at, 3)
        accepted_lower = bounds.lower - alert.profile.group_interval.seconds - alert.profile.scrape_interval.seconds
        accepted_upper = bounds.upper + DELIVERY_SLACK_SECONDS
        result = {
            "alertname": alertname, "profile": profile, "error_ratio": ratio, "healed_at": healed_at,
            "resolved_in_prometheus_s": _s(resolved_at, healed_at), "webhook_s": webhook_s,
            "predicted_lower_s": round(bounds.lower, 3), "predicted_upper_s": round(bounds.upper, 3),
            "accepted_lower_s": round(accepted_lower, 3), "accepted_upper_s": round(accepted_upper, 3),
            "within_prediction": accepted_lower <= webhook_s <= accepted_upper,
        }
        timeline.record("observation.alert_resolved", configuration, alertname=alertname, fault_at=onset, result=result)
        return result


def alert_stays_silent(
    alertname: str = "ProcessorAvailabilityBurnRateHigh",
    profile: str = "drill",
    observe_seconds: float | None = None,
    baseline_settle_timeout: float = 0.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> int:
    """The negative drill: how many times ``alertname`` was seen pending or firing (Prometheus rule evaluations,
    from its ``ALERTS`` series, plus "firing" webhook notifications) during ``observe_seconds`` after this run's
    ``fault.http_errors``, whose ratio must be below the alert's threshold. A tolerance of 0 judges it.

    ``observe_seconds`` defaults to twice the predicted upper bound for a total outage, and may not be shorter
    than that bound (a shorter watch proves nothing). Waits until the observation is over. Before the method:
    1 if the alert is active now (after up to ``baseline_settle_timeout`` seconds for it to clear), else 0.
    Raises InvalidArgument when the injected ratio is above the threshold or the fault's TTL ends before the
    observation; NoData when there was no fault, it was healed before the observation ended, or the SLI saw no
    errors at all (no traffic, or the fault was not applied).
    """
    settle = number("baseline_settle_timeout", baseline_settle_timeout, at_least=0)
    with _drill(alertname, profile, configuration, secrets) as drill:
        target, alert, fault = drill.target, drill.alert, drill.fault
        if fault is None:
            return 0 if _baseline(target, alert, alertname, settle)["within_prediction"] else 1
        onset, ratio = drill.onset, drill.ratio
        outage = time_to_fire(alert.burn.windows, alert.threshold, alert.burn.for_, 1.0, alert.profile)
        if observe_seconds is None:
            observe_seconds = 2 * outage.upper
        observe_seconds = number("observe_seconds", observe_seconds, greater_than=0)
        if observe_seconds < outage.upper:
            raise InvalidArgument(f"observe_seconds {observe_seconds:g} is shorter than the {outage.upper:g} s a total "
                                  f"outage takes to fire {alertname}: silence that short proves nothing")
        if time_to_fire(alert.burn.windows, alert.threshold, alert.burn.for_, ratio, alert.profile) is not None:
            raise InvalidArgument(f"the fault's error ratio {ratio:g} is above {alertname}'s threshold "
                                  f"{alert.threshold:g}: it is expected to fire, not to stay silent")
        if float(fault.get("ttl_seconds", 0)) < observe_seconds:
            raise InvalidArgument(f"the fault's ttl_seconds {fault.get('ttl_seconds')} ends before the "
                                  f"{observe_seconds:g} s observation")
        wanted = alert.labels(alertname)
        end = onset + observe_seconds
        polled = 0
        while (now := time.time()) < end:
            polled += len(_prometheus_alerts(target, wanted))
            time.sleep(min(POLL_SECONDS, max(0.0, end - now)))
        time.sleep(alert.profile.evaluation_interval.seconds)  # the last evaluation inside the window is stored
        healed = [e for e in timeline.current_run(configuration)
                  if e.get("kind") == HEALED and onset <= float(e["at"]) < end]
        if healed:
            raise NoData(f"the fault was healed {float(healed[0]['at']) - onset:.1f} s after onset, before the "
                         f"{observe_seconds:g} s observation ended")
        selector = ",".join(f'{k}="{v}"' for k, v in wanted.items())
        window = f"{int(round(observe_seconds * 1000))}ms"
        evaluations = prometheus_query(target, f"count_over_time(ALERTS{{{selector}}}[{window}])", at=end)
        seen_in_rules = int(sum(float(r["value"][1]) for r in evaluations))
        notified = len([t for t in _notifications(target, wanted, "firing", onset) if t <= end + 2])
        shortest = min(alert.burn.windows, key=lambda d: d.ms)
        sli = prometheus_query(target, f'max_over_time({error_ratio_record(shortest, alert.profile)}'
                               f'{{slo="{alert.burn.slo}"}}[{window}])', at=end)
        max_ratio = max((float(r["value"][1]) for r in sli), default=None)
        if max_ratio is None or not max_ratio > 0:
            raise NoData(f"the SLI {error_ratio_record(shortest, alert.profile)} saw no errors in the "
                         f"{observe_seconds:g} s after the fault (got {max_ratio}): was there traffic, was the fault on?")
        seen = max(seen_in_rules, polled) + notified
        timeline.record("observation.alert_silent", configuration, alertname=alertname, fault_at=onset, seen=seen,
                        rule_evaluations_active=seen_in_rules, notifications=notified, error_ratio=ratio,
                        max_sli_error_ratio=round(max_ratio, 5), threshold=alert.threshold,
                        observed_seconds=observe_seconds)
        return seen


def _first_firing_evaluation(target: Target, wanted: dict[str, str], onset: float, now: float) -> list[float]:
    selector = ",".join(f'{k}="{v}"' for k, v in {**wanted, "alertstate": "firing"}.items())
    window = f"{int((now - onset) * 1000) + 1}ms"
    rows = prometheus_query(target, f"ALERTS{{{selector}}}[{window}]", at=now)
    stamps = [float(ts) for r in rows for ts, _ in r["values"]]
    return [min(stamps)] if stamps else []
