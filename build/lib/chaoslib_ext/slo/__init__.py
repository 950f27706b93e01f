"""SLOs as code: the versioned spec (deploy/monitoring/slos.yaml) → a validated model → Prometheus rules,
a time-scaled drill copy, promtool tests, and predicted alert times.

The bottom layer of chaoslib_ext: it imports nothing else of the framework, so every other layer (probes,
targets, game days) may read the SLO catalogue. See docs/slos.md.
"""
from chaoslib_ext.slo.durations import Duration
from chaoslib_ext.slo.model import SLO, Catalog, EventsSLI, LatencySLI, Profile, ThresholdSLI
from chaoslib_ext.slo.predict import Bounds, time_to_fire, time_to_resolve
from chaoslib_ext.slo.rules import BurnAlert, burn_alerts, drill_copy, rule_files
from chaoslib_ext.slo.spec import SPEC_VERSION, SpecError, load, loads, parse

__all__ = [
    "SPEC_VERSION",
    "Bounds",
    "BurnAlert",
    "Catalog",
    "Duration",
    "EventsSLI",
    "LatencySLI",
    "Profile",
    "SLO",
    "SpecError",
    "ThresholdSLI",
    "burn_alerts",
    "drill_copy",
    "load",
    "loads",
    "parse",
    "rule_files",
    "time_to_fire",
    "time_to_resolve",
]
