"""Targets: where faults go and measurements come from. Pick one with ``targets.from_configuration``."""
from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from chaoslib_ext.errors import TargetMisconfigured
from chaoslib_ext.targets.base import (
    ALLOWED_SIGNALS, Healed, HttpErrorFault, Instance, Killed, Target, database_from, kill_signal,
)

KNOWN_TARGETS = ("local", "kubernetes")

__all__ = ["ALLOWED_SIGNALS", "Healed", "HttpErrorFault", "Instance", "Killed", "Target", "from_configuration",
           "KNOWN_TARGETS", "kill_signal"]


def from_configuration(configuration: Mapping[str, Any] | None = None, secrets: Mapping[str, Any] | None = None) -> Target:
    """A fresh target for the experiment's ``configuration`` (``target: local`` by default; ``database``, the
    processor's database, ``ca3`` by default). Nothing is cached."""
    kind = str((configuration or {}).get("target") or "local").strip().lower()
    database = database_from(configuration)
    if kind == "local":
        from chaoslib_ext.targets.local import LocalTarget, control_url_from

        target: Target = LocalTarget(control_url_from(configuration))
    elif kind == "kubernetes":
        missing = [m for m in ("kubernetes", "chaosk8s") if importlib.util.find_spec(m) is None]
        if missing:
            raise TargetMisconfigured(f"the kubernetes target needs the kubernetes extra, which is not installed "
                                      f"(no {', '.join(missing)}): pip install 'chaos-dr-verify[kubernetes]'")
        from chaoslib_ext.targets.kubernetes import target_from_configuration

        target = target_from_configuration(configuration)
    else:
        raise TargetMisconfigured(
            f"unknown target {kind!r}: this version supports {', '.join(KNOWN_TARGETS)}. "
            "Set it with the experiment's configuration `target:` or `--var target=local|kubernetes`."
        )
    target.database = database
    return target
