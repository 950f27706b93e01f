"""Prometheus rule generation: model → rule groups (plain dicts) → YAML text. Pure functions, no I/O.

Every SLO becomes one rule group in its own file (``slo-<name>.yml``), recording rules first: Prometheus evaluates
a group's rules in order, so the alerts read the ratios recorded in the same evaluation instead of one interval
late. One file per SLO also keeps each promtool test from evaluating every other SLO's rules at every step.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

import yaml

from chaoslib_ext.slo.durations import Duration
from chaoslib_ext.slo.model import (
    BurnRateAlerting,
    BurnWindow,
    Catalog,
    EventsSLI,
    LatencySLI,
    Profile,
    SLO,
    ThresholdAlert,
    ThresholdSLI,
    fmt_number,
)

PRODUCTION = "production"


@dataclass(frozen=True)
class BurnAlert:
    """One burn-rate alert of an SLO, with its threshold worked out."""

    name: str
    slo: str
    windows: tuple[Duration, ...]
    """Long window first; all of them must exceed the threshold."""
    burn_rate: Decimal
    threshold: Decimal
    """burn_rate × error budget, compared with the windowed error ratio."""
    for_: Duration
    severity: str


def level(profile: Profile) -> str:
    """First part of every recorded name. The drill copy records under ``slo_drill:`` so that, when a local
    Prometheus loads both profiles, no production selector can ever match a drill series."""
    return "slo" if profile.name == PRODUCTION else "slo_drill"


def error_ratio_record(window: Duration, profile: Profile) -> str:
    return f"{level(profile)}:sli_error:ratio_rate{window}"


def latency_record(label: str, window: Duration, profile: Profile) -> str:
    return f"{level(profile)}:sli_latency_seconds:{label}_rate{window}"


def value_record(profile: Profile) -> str:
    return f"{level(profile)}:sli_value:raw"


def burn_alerts(slo: SLO) -> tuple[BurnAlert, ...]:
    if slo.burn_rate is None or slo.error_budget is None:
        return ()
    return tuple(
        BurnAlert(
            name=slo.burn_rate.name_prefix + w.suffix, slo=slo.name, windows=w.windows, burn_rate=w.burn_rate,
            threshold=w.threshold(slo.error_budget).normalize(), for_=w.for_, severity=w.severity,
        )
        for w in slo.burn_rate.policy
    )


def series_labels(slo: SLO, profile: Profile) -> dict[str, str]:
    labels = {"slo": slo.name, "service": slo.service}
    if profile.name != PRODUCTION:
        labels["profile"] = profile.name
    return labels


def _selector(slo: SLO) -> str:
    return f'{{slo="{slo.name}"}}'


def _alert_rule(name: str, expr: str, for_: Duration, labels: dict[str, str], annotations: dict[str, str]) -> dict:
    rule: dict = {"alert": name, "expr": expr}
    if for_.ms:
        rule["for"] = str(for_)
    rule["labels"] = labels
    rule["annotations"] = annotations
    return rule


def _drill_note(profile: Profile) -> str:
    return "" if profile.name == PRODUCTION else f" [drill: time scale {fmt_number(profile.time_scale)}]"


def burn_alert_annotations(slo: SLO, alert: BurnAlert, profile: Profile) -> dict[str, str]:
    windows = " and ".join(str(w) for w in alert.windows)
    plural = "windows" if len(alert.windows) > 1 else "window"
    prefix = f"{slo.ref}: " if slo.ref else ""
    return {
        "summary": f"{slo.title} SLO burn rate too high ({windows} {plural}){_drill_note(profile)}",
        "description": (
            f"{prefix}error ratio over {windows} above {fmt_number(alert.burn_rate)}x the error budget "
            f"({fmt_number(slo.error_budget)} for a {fmt_number(slo.objective)}% objective), i.e. above "
            f"{fmt_number(alert.threshold)}."
        ),
    }


def threshold_alert_annotations(slo: SLO, alert: ThresholdAlert, profile: Profile) -> dict[str, str]:
    if isinstance(slo.sli, LatencySLI):
        target = slo.sli.target(alert.quantile)
        what = f"{target.label} latency over {slo.sli.window}"
        goal = f"{target.label} <= {fmt_number(target.max_seconds)}s"
        unit = "s"
    else:
        what = slo.sli.measure + (f" over {slo.sli.window}" if slo.sli.window else "")
        goal = f"{slo.sli.target.promql()}"
        unit = ""
    summary = alert.summary or f"{slo.title}: {what} {alert.condition.op} {fmt_number(alert.condition.value)}{unit}"
    prefix = f"{slo.ref}: " if slo.ref else ""
    return {
        "summary": summary + _drill_note(profile),
        "description": f"{prefix}{what} {alert.condition.promql()}{unit}; the SLO is {goal}.",
    }


def _metadata_rules(slo: SLO, labels: dict[str, str], profile: Profile) -> list[dict]:
    if slo.objective is None:
        return []
    rules = [{"record": f"{level(profile)}:objective:ratio", "expr": f"vector({fmt_number(slo.objective / 100)})",
              "labels": labels}]
    if isinstance(slo.sli, EventsSLI):
        rules.append({"record": f"{level(profile)}:error_budget:ratio",
                      "expr": f"vector({fmt_number(slo.error_budget)})", "labels": labels})
    return rules


def _events_rules(slo: SLO, sli: EventsSLI, labels: dict[str, str], profile: Profile) -> list[dict]:
    alerts = burn_alerts(slo)
    windows = sorted({w for a in alerts for w in a.windows})
    rules = [{"record": error_ratio_record(w, profile), "expr": sli.error_ratio_query(w), "labels": labels} for w in windows]
    for alert in alerts:
        threshold = fmt_number(alert.threshold)
        expr = "\nand\n".join(f"{error_ratio_record(w, profile)}{_selector(slo)} > {threshold}" for w in alert.windows)
        rules.append(_alert_rule(alert.name, expr, alert.for_, {"severity": alert.severity, **_profile_label(profile)},
                                 burn_alert_annotations(slo, alert, profile)))
    return rules


def _profile_label(profile: Profile) -> dict[str, str]:
    return {} if profile.name == PRODUCTION else {"profile": profile.name}


def _latency_rules(slo: SLO, sli: LatencySLI, labels: dict[str, str], profile: Profile) -> list[dict]:
    rules = [
        {"record": latency_record(t.label, sli.window, profile), "expr": sli.quantile_query(t.quantile), "labels": labels}
        for t in sli.targets
    ]
    for alert in slo.alerts:
        record = latency_record(sli.target(alert.quantile).label, sli.window, profile)
        rules.append(_alert_rule(alert.name, f"{record}{_selector(slo)} {alert.condition.promql()}", alert.for_,
                                 {"severity": alert.severity, **_profile_label(profile)},
                                 threshold_alert_annotations(slo, alert, profile)))
    return rules


def _threshold_rules(slo: SLO, sli: ThresholdSLI, labels: dict[str, str], profile: Profile) -> list[dict]:
    rules = [{"record": value_record(profile), "expr": sli.value_query(), "labels": labels}]
    for alert in slo.alerts:
        rules.append(_alert_rule(alert.name, f"{value_record(profile)}{_selector(slo)} {alert.condition.promql()}",
                                 alert.for_, {"severity": alert.severity, **_profile_label(profile)},
                                 threshold_alert_annotations(slo, alert, profile)))
    return rules


def group_name(slo: SLO, profile: Profile) -> str:
    return f"slo-{slo.name}" if profile.name == PRODUCTION else f"slo-{slo.name}-{profile.name}"


def slo_group(slo: SLO, profile: Profile) -> dict:
    labels = series_labels(slo, profile)
    build = {EventsSLI: _events_rules, LatencySLI: _latency_rules, ThresholdSLI: _threshold_rules}[type(slo.sli)]
    return {"name": group_name(slo, profile), "rules": _metadata_rules(slo, labels, profile) + build(slo, slo.sli, labels, profile)}


def rule_file_name(slo: SLO) -> str:
    return f"slo-{slo.name}.yml"


def rule_files(catalog: Catalog) -> dict[str, dict]:
    """``slo-<name>.yml`` → rule file document, in spec order."""
    return {rule_file_name(slo): {"groups": [slo_group(slo, catalog.profile)]} for slo in catalog.slos}


def drill_copy(catalog: Catalog) -> Catalog:
    """The same SLOs with every window and ``for:`` divided by the drill's time scale (floored at its
    ``min_duration``); thresholds and objectives are unchanged, so a drill exercises the very same arithmetic."""
    profile = catalog.drill

    def scale(d: Duration) -> Duration:
        return d.scaled(profile.time_scale, profile.min_duration)

    def scale_window(w: BurnWindow) -> BurnWindow:
        return dataclasses.replace(w, long=scale(w.long), short=None if w.short is None else scale(w.short), for_=scale(w.for_))

    def scale_slo(slo: SLO) -> SLO:
        sli = slo.sli
        if isinstance(sli, LatencySLI):
            sli = dataclasses.replace(sli, window=scale(sli.window))
        elif isinstance(sli, ThresholdSLI) and sli.window is not None:
            sli = dataclasses.replace(sli, window=scale(sli.window))
        burn_rate = slo.burn_rate
        if burn_rate is not None:
            burn_rate = BurnRateAlerting(burn_rate.name_prefix, burn_rate.mode, tuple(scale_window(w) for w in burn_rate.policy))
        alerts = tuple(dataclasses.replace(a, for_=scale(a.for_)) for a in slo.alerts)
        return dataclasses.replace(slo, sli=sli, period=scale(slo.period), burn_rate=burn_rate, alerts=alerts)

    return dataclasses.replace(catalog, slos=tuple(scale_slo(s) for s in catalog.slos), profile=profile)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:
        # Shared label dicts would otherwise become &id001/*id001 anchors: valid, but unreadable in a rules file.
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line PromQL as a literal block keeps the generated files readable and diffable.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def to_yaml(document: dict, header: str) -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines()) + body
