"""Load the versioned SLO spec (YAML) and validate it into the model.

Every problem is reported with the path of the field at fault (``slos[2].objective: 100.5 is not within
(0, 100)``), and all problems of a spec are reported at once so a user fixes them in one pass. PromQL syntax is
checked later, by promtool on the generated rules (``chaoslib_ext.slo.output``), because only Prometheus' own
parser is authoritative.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from chaoslib_ext.slo.durations import Duration
from chaoslib_ext.slo.model import (
    OPERATORS,
    POLICIES,
    SEVERITIES,
    WINDOW_PLACEHOLDER,
    BurnRateAlerting,
    Catalog,
    Condition,
    EventsSLI,
    Fixture,
    LatencySLI,
    LatencyTarget,
    Profile,
    SLO,
    ThresholdAlert,
    ThresholdSLI,
    fmt_number as fmt,
)

SPEC_VERSION = "gameday/v1"

DEFAULT_SPEC_PATH = Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "slos.yaml"
"""The SLO spec of this checkout, which every target loads unless told otherwise (``configured_path``)."""
SPEC_ENV = "GAMEDAY_SLO_SPEC"

_SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERIES = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?$")
_TEMPLATE = re.compile(r"\{\{.*?\}\}")

_PRODUCTION_DEFAULTS = {"scrape_interval": "30s", "evaluation_interval": "30s", "group_wait": "30s", "group_interval": "5m"}
"""kube-prometheus-stack's scrape and evaluation intervals and Alertmanager's default group_wait/group_interval."""

_DRILL_DEFAULTS = {"scrape_interval": "1s", "evaluation_interval": "1s", "group_wait": "1s", "group_interval": "1s"}
"""What stack/chaos_dr_stack/local/monitoring.py configures for the local Prometheus and Alertmanager."""


class SpecError(ValueError):
    """The spec is invalid. ``errors`` holds one ``path: problem`` line per problem."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class _Mapping:
    """One mapping of the spec: typed field access that records errors under the field's path."""

    def __init__(self, value: Any, path: str, errors: list[str], known: tuple[str, ...] | None):
        """``known`` lists the allowed keys; None allows any (for maps of label names)."""
        self.path, self.errors, self.known = path, errors, known
        if not isinstance(value, dict):
            errors.append(f"{path or '<spec>'}: expected a mapping, got {_describe(value)}")
            value = {}
        self.data = value
        for key in value if known is not None else ():
            if key not in known:
                self.error(str(key), f"unknown field (expected one of: {', '.join(known)})")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, problem: str) -> None:
        self.errors.append(f"{self.at(key)}: {problem}")

    def has(self, key: str) -> bool:
        return key in self.data

    def _raw(self, key: str, required: bool) -> Any:
        if key not in self.data:
            if required:
                self.error(key, "missing (required)")
            return None
        return self.data[key]

    def string(self, key: str, required: bool = False, default: str | None = None,
               pattern: re.Pattern | None = None, hint: str = "") -> str | None:
        value = self._raw(key, required)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            self.error(key, f"expected a non-empty string, got {_describe(value)}")
            return default
        if pattern and not pattern.match(value):
            self.error(key, f"{value!r} is not valid{hint}")
            return default
        return value

    def number(self, key: str, required: bool = False, default: Decimal | None = None) -> Decimal | None:
        value = self._raw(key, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(key, f"expected a number, got {_describe(value)}")
            return default
        # repr of a float is the shortest text that round-trips: 99.5 -> "99.5", so Decimal stays exact.
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._raw(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(key, f"expected true or false, got {_describe(value)}")
            return default
        return value

    def duration(self, key: str, required: bool = False, default: str | None = None,
                 positive: bool = True) -> Duration | None:
        value = self._raw(key, required)
        if value is None:
            return None if default is None else Duration.parse(default)
        try:
            parsed = Duration.parse(value)
        except ValueError as exc:
            self.error(key, str(exc))
            return None if default is None else Duration.parse(default)
        if positive and parsed.ms == 0:
            self.error(key, "must be longer than 0s")
        return parsed

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None, required: bool = False) -> str | None:
        value = self._raw(key, required)
        if value is None:
            return default
        if value not in choices:
            self.error(key, f"{value!r} is not one of: {', '.join(choices)}")
            return default
        return value

    def mapping(self, key: str, known: tuple[str, ...] | None, required: bool = False) -> _Mapping | None:
        value = self._raw(key, required)
        return None if value is None else _Mapping(value, self.at(key), self.errors, known)

    def sequence(self, key: str, required: bool = False) -> list:
        value = self._raw(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, f"expected a list, got {_describe(value)}")
            return []
        if required and not value:
            self.error(key, "must not be empty")
        return value


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def configured_path(configuration: Mapping[str, Any] | None) -> Path:
    """The SLO spec to load: the configuration's ``slo_spec`` (``--var slo_spec=...``), else ``$GAMEDAY_SLO_SPEC``,
    else this checkout's ``deploy/monitoring/slos.yaml``. An installed framework has no checkout: name the spec."""
    return Path((configuration or {}).get("slo_spec") or os.environ.get(SPEC_ENV) or DEFAULT_SPEC_PATH)


def load(path: Path | str) -> Catalog:
    """Read and validate the spec at ``path``; raises SpecError (never half a model)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        hint = f" (name the SLO spec with the configuration's slo_spec or ${SPEC_ENV})" if path == DEFAULT_SPEC_PATH else ""
        raise SpecError([f"<spec>: cannot read {path}: {exc.strerror or exc}{hint}"]) from exc
    return loads(text)


def loads(text: str) -> Catalog:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError([f"<spec>: not valid YAML: {exc}"]) from exc
    return parse(document)


def parse(document: Any) -> Catalog:
    """Validate an already-parsed spec document."""
    errors: list[str] = []
    top = _Mapping(document, "", errors, ("version", "alerting", "production", "drill", "slos"))
    version = top.string("version", required=True)
    if version is not None and version != SPEC_VERSION:
        top.error("version", f"{version!r} is not supported (expected {SPEC_VERSION!r})")

    alerting = top.mapping("alerting", ("mode",))
    default_mode = alerting.choice("mode", tuple(POLICIES), default="seed") if alerting else "seed"
    production = _profile(top.mapping("production", tuple(_PRODUCTION_DEFAULTS)), "production", _PRODUCTION_DEFAULTS)
    drill = _profile(top.mapping("drill", ("time_scale", "min_duration", *_DRILL_DEFAULTS)), "drill", _DRILL_DEFAULTS)

    slos = []
    for index, item in enumerate(top.sequence("slos", required=True)):
        slo = _slo(_Mapping(item, f"slos[{index}]", errors, _SLO_FIELDS), default_mode)
        if slo is not None:
            slos.append((index, slo))
    _check_unique(slos, errors)
    if errors:
        raise SpecError(errors)
    return Catalog(version=version, slos=tuple(s for _, s in slos), profile=production, production=production, drill=drill)


def _profile(node: _Mapping | None, name: str, defaults: dict[str, str]) -> Profile:
    def timing(key: str) -> Duration:
        return (node.duration(key, default=defaults[key]) if node else None) or Duration.parse(defaults[key])

    kwargs: dict[str, Any] = {key: timing(key) for key in defaults}
    if name == "drill":
        scale = node.number("time_scale", default=Decimal(60)) if node else Decimal(60)
        if scale is not None and scale < 1:
            node.error("time_scale", f"{fmt(scale)} must be at least 1 (a drill compresses time)")
            scale = Decimal(60)
        kwargs["time_scale"] = scale
        kwargs["min_duration"] = (node.duration("min_duration", default="1s") if node else None) or Duration.parse("1s")
    return Profile(name=name, **kwargs)


_SLO_FIELDS = ("name", "ref", "title", "description", "service", "served", "objective", "period", "sli",
               "alerting", "alerts", "test_fixture")


def _slo(node: _Mapping, default_mode: str) -> SLO | None:
    name = node.string("name", required=True, pattern=_SLUG, hint=" (lowercase letters, digits and dashes)")
    service = node.string("service", required=True, pattern=_SLUG, hint=" (lowercase letters, digits and dashes)")
    title = node.string("title", default=name)
    served = node.boolean("served", default=True)
    period = node.duration("period", default="30d")
    objective = node.number("objective")
    if objective is not None and not Decimal(0) < objective < Decimal(100):
        node.error("objective", f"{fmt(objective)} is not within (0, 100)")
        objective = None

    sli_node = node.mapping("sli", ("events", "latency", "threshold"), required=True)
    kinds = [k for k in ("events", "latency", "threshold") if sli_node and sli_node.has(k)]
    sli = None
    if sli_node is not None and len(kinds) != 1:
        node.error("sli", f"needs exactly one of events, latency, threshold (got {', '.join(kinds) or 'none'})")
    elif sli_node is not None:
        sli = {"events": _events, "latency": _latency, "threshold": _threshold}[kinds[0]](sli_node)

    burn_rate, alerts = None, ()
    if isinstance(sli, EventsSLI):
        if objective is None and not node.has("objective"):
            node.error("objective", "missing (required for an events SLI)")
        if node.has("alerts"):
            node.error("alerts", "not used by an events SLI (its alerts come from `alerting`)")
        burn_rate = _burn_rate(node.mapping("alerting", ("name_prefix", "mode")), default_mode)
    elif sli is not None:
        if node.has("alerting"):
            node.error("alerting", "burn-rate alerting needs an events SLI; use `alerts` here")
        alerts = tuple(
            a for i, item in enumerate(node.sequence("alerts"))
            if (a := _alert(_Mapping(item, node.at(f"alerts[{i}]"), node.errors, _ALERT_FIELDS), sli)) is not None
        )
    fixture_node = node.mapping("test_fixture", _FIXTURE_FIELDS)
    fixture = _fixture(fixture_node, sli, alerts) if fixture_node is not None else None

    if None in (name, service, sli):
        return None
    return SLO(
        name=name, title=title, service=service, served=served, sli=sli, objective=objective, period=period,
        ref=node.string("ref", default=""), description=node.string("description", default="").strip(),
        burn_rate=burn_rate, alerts=alerts, fixture=fixture,
    )


def _query(node: _Mapping, key: str, placeholder: bool | None, required: bool = True) -> str | None:
    """A PromQL field. ``placeholder`` True: must contain {{.window}}; False: must not; None: either."""
    query = node.string(key, required=required)
    if query is None:
        return None
    query = query.strip()
    stray = [t for t in _TEMPLATE.findall(query) if t != WINDOW_PLACEHOLDER]
    if stray:
        node.error(key, f"unknown placeholder {stray[0]} (only {WINDOW_PLACEHOLDER} is substituted)")
    elif placeholder is True and WINDOW_PLACEHOLDER not in query:
        node.error(key, f"missing the {WINDOW_PLACEHOLDER} placeholder for the range, e.g. rate(x[{WINDOW_PLACEHOLDER}])")
    elif placeholder is False and WINDOW_PLACEHOLDER in query:
        node.error(key, f"has {WINDOW_PLACEHOLDER} but no window is set")
    return query


def _events(sli: _Mapping) -> EventsSLI | None:
    node = sli.mapping("events", ("error_query", "total_query"))
    error_query = _query(node, "error_query", placeholder=True)
    total_query = _query(node, "total_query", placeholder=True)
    if error_query is None or total_query is None:
        return None
    return EventsSLI(error_query=error_query, total_query=total_query)


def _latency(sli: _Mapping) -> LatencySLI | None:
    node = sli.mapping("latency", ("bucket_query", "window", "targets"))
    bucket_query = _query(node, "bucket_query", placeholder=False)
    if bucket_query is not None and not (_SERIES.match(bucket_query) and bucket_query.split("{")[0].endswith("_bucket")):
        node.error("bucket_query", f"{bucket_query!r} must select a histogram's _bucket series, e.g. x_seconds_bucket{{job=\"y\"}}")
        bucket_query = None
    window = node.duration("window", default="5m")
    targets = []
    for i, item in enumerate(node.sequence("targets", required=True)):
        target = _Mapping(item, node.at(f"targets[{i}]"), node.errors, ("quantile", "max_seconds"))
        quantile = target.number("quantile", required=True)
        max_seconds = target.number("max_seconds", required=True)
        if quantile is not None and not Decimal(0) < quantile < Decimal(1):
            target.error("quantile", f"{fmt(quantile)} is not within (0, 1)")
        elif quantile is not None and any(t.quantile == quantile for t in targets):
            target.error("quantile", f"{fmt(quantile)} has a target already")
        elif max_seconds is not None and max_seconds <= 0:
            target.error("max_seconds", f"{fmt(max_seconds)} must be positive")
        elif quantile is not None and max_seconds is not None:
            targets.append(LatencyTarget(quantile=quantile, max_seconds=max_seconds))
    if bucket_query is None or window is None or not targets:
        return None
    return LatencySLI(bucket_query=bucket_query, window=window, targets=tuple(targets))


def _condition(node: _Mapping, default_op: str | None) -> Condition | None:
    op = node.choice("op", OPERATORS, default=default_op, required=default_op is None)
    value = node.number("value", required=True)
    return None if op is None or value is None else Condition(op=op, value=value)


def _threshold(sli: _Mapping) -> ThresholdSLI | None:
    node = sli.mapping("threshold", ("query", "window", "target", "measure"))
    window = node.duration("window") if node.has("window") else None
    query = _query(node, "query", placeholder=node.has("window"))
    target_node = node.mapping("target", ("op", "value"), required=True)
    target = _condition(target_node, None) if target_node else None
    if query is None or target is None or (node.has("window") and window is None):
        return None
    return ThresholdSLI(query=query, window=window, target=target, measure=node.string("measure", default="value"))


def _burn_rate(node: _Mapping | None, default_mode: str) -> BurnRateAlerting | None:
    if node is None:
        return None
    prefix = node.string("name_prefix", required=True, pattern=_ALERT_NAME, hint=" (an alert name: letters, digits, _)")
    mode = node.choice("mode", tuple(POLICIES), default=default_mode)
    if prefix is None or mode is None:
        return None
    return BurnRateAlerting(name_prefix=prefix, mode=mode, policy=POLICIES[mode])


_ALERT_FIELDS = ("name", "severity", "op", "value", "for", "quantile", "summary")


def _alert(node: _Mapping, sli: LatencySLI | ThresholdSLI) -> ThresholdAlert | None:
    name = node.string("name", required=True, pattern=_ALERT_NAME, hint=" (an alert name: letters, digits, _)")
    severity = node.choice("severity", SEVERITIES, required=True)
    condition = _condition(node, ">")
    for_ = node.duration("for", default="0s", positive=False)
    quantile = node.number("quantile", required=isinstance(sli, LatencySLI))
    if isinstance(sli, ThresholdSLI) and quantile is not None:
        node.error("quantile", "only latency SLIs have quantiles")
    elif isinstance(sli, LatencySLI) and quantile is not None and sli.target(quantile) is None:
        known = ", ".join(fmt(t.quantile) for t in sli.targets)
        node.error("quantile", f"{fmt(quantile)} has no target in sli.latency.targets (known: {known})")
        quantile = None
    if None in (name, severity, condition, for_) or (isinstance(sli, LatencySLI) and quantile is None):
        return None
    return ThresholdAlert(name=name, severity=severity, condition=condition, for_=for_,
                          quantile=quantile, summary=node.string("summary", default=""))


_FIXTURE_FIELDS = ("good", "bad", "total", "counter", "gauge", "labels", "ignored", "rate")
_FIXTURE_ROLES = {"events": ("good", "bad", "total"), "threshold": ("counter", "gauge")}


def _fixture(node: _Mapping, sli: Any, alerts: tuple[ThresholdAlert, ...]) -> Fixture | None:
    series = {}
    for key in ("good", "bad", "total", "counter", "gauge"):
        value = node.string(key, pattern=_SERIES, hint=" (a promtool series: metric{label=\"value\"})")
        if value is not None:
            series[key] = value
    ignored = []
    for i, item in enumerate(node.sequence("ignored")):
        if not isinstance(item, str) or not _SERIES.match(item):
            node.error(f"ignored[{i}]", f"{item!r} is not a promtool series (metric{{label=\"value\"}})")
        else:
            ignored.append(item)
    labels = {}
    labels_node = node.mapping("labels", None)
    if labels_node is not None:
        for key, value in labels_node.data.items():
            if not isinstance(value, str):
                labels_node.error(str(key), f"expected a label value (string), got {_describe(value)}")
            else:
                labels[str(key)] = value
    rate = node.number("rate", default=Decimal(10))
    if rate is not None and rate <= 0:
        node.error("rate", f"{fmt(rate)} must be positive")

    if sli is None:
        return None  # The SLI is already reported; its roles cannot be judged.
    kind = "events" if isinstance(sli, EventsSLI) else "threshold" if isinstance(sli, ThresholdSLI) else "latency"
    allowed = _FIXTURE_ROLES.get(kind, ())
    for key in series:
        if key not in allowed:
            node.error(key, f"not a role of a {kind} SLI fixture (roles: {', '.join(allowed) or 'none'})")
    if kind == "latency":
        node.errors.append(f"{node.path}: promtool tests are not generated for latency SLIs; write them by hand")
    elif kind == "events" and ("good" not in series or ("bad" in series) == ("total" in series)):
        node.errors.append(f"{node.path}: an events fixture needs `good` and exactly one of `bad` or `total`")
    elif kind == "threshold" and ("counter" in series) == ("gauge" in series):
        node.errors.append(f"{node.path}: a threshold fixture needs exactly one of `counter` or `gauge`")
    elif kind == "threshold" and "counter" in series:
        if sli.window is None:
            node.error("counter", "a counter fixture needs sli.threshold.window (events leave the window)")
        for alert in alerts:
            if alert.condition.op not in (">", ">="):
                node.error("counter", f"alert {alert.name!r} compares with {alert.condition.op!r}; "
                                      "a counter fixture drives only > and >= alerts")
    return Fixture(**series, labels=tuple(sorted(labels.items())), ignored=tuple(ignored), rate=rate or Decimal(10))


def _check_unique(slos: list[tuple[int, SLO]], errors: list[str]) -> None:
    names: dict[str, int] = {}
    alerts: dict[str, str] = {}
    for index, slo in slos:
        if slo.name in names:
            errors.append(f"slos[{index}].name: {slo.name!r} is already used by slos[{names[slo.name]}]")
        names.setdefault(slo.name, index)
        owned: list[tuple[str, str]] = []
        if slo.burn_rate is not None:
            owned += [(slo.burn_rate.name_prefix + w.suffix, f"slos[{index}].alerting.name_prefix") for w in slo.burn_rate.policy]
        owned += [(a.name, f"slos[{index}].alerts[{i}].name") for i, a in enumerate(slo.alerts)]
        for alert, path in owned:
            if alert in alerts:
                errors.append(f"{path}: alert {alert!r} is already defined at {alerts[alert]}")
            alerts.setdefault(alert, path)
