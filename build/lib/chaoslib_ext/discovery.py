"""What ``chaos discover chaos-dr-verify --no-install`` reports: every action and probe the experiments can call,
with each argument's type, default and the function's documentation.

chaoslib reads types from ``inspect.signature`` as written. Our modules postpone their annotations, so it would
see strings and call every type ``object``; here the annotations are resolved first, and optional and generic
types are named by what they hold (``float | None`` is a ``number``, ``dict[str, Any]`` a ``mapping``)."""
from __future__ import annotations

import importlib
import inspect
import types
import typing
from importlib import metadata

from chaoslib.discovery.discover import initialize_discovery_result, portable_type_name
from chaoslib.types import DiscoveredActivities, Discovery

DISTRIBUTION = "chaos-dr-verify"

ACTION_MODULES = tuple(f"chaoslib_ext.actions.{name}" for name in (
    "api_faults", "data", "kafka", "kill_trials", "load", "network", "pods", "providers"))
PROBE_MODULES = tuple(f"probes.{name}" for name in (
    "alerts", "api", "cuj1", "dr", "failover", "kafka", "outage", "pods", "processing", "providers", "recovery",
    "restarts", "slo"))


def discover(discover_system: bool = True) -> Discovery:
    """The actions and probes of this extension. There is no system to discover: the targets are named in each
    experiment's configuration (``local_control_url``, or a Kubernetes namespace)."""
    discovery = initialize_discovery_result(DISTRIBUTION, metadata.version(DISTRIBUTION), "chaos-dr-verify")
    for module in ACTION_MODULES:
        discovery["activities"].extend(module_activities(module, "action"))
    for module in PROBE_MODULES:
        discovery["activities"].extend(module_activities(module, "probe"))
    return discovery


def module_activities(module_name: str, activity_type: str) -> DiscoveredActivities:
    """Every function in the module's ``__all__``, as chaoslib describes an activity."""
    module = importlib.import_module(module_name)
    activities = []
    for name in module.__all__:
        func = getattr(module, name)
        if not inspect.isfunction(func):
            continue
        hints = typing.get_type_hints(func)
        activity = {"type": activity_type, "name": name, "mod": module_name, "doc": inspect.getdoc(func),
                    "arguments": []}
        if "return" in hints:
            activity["return_type"] = portable_name(hints["return"])
        for param in inspect.signature(func).parameters.values():
            if param.kind in (param.KEYWORD_ONLY, param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            argument = {"name": param.name}
            if param.default is not inspect.Parameter.empty:
                argument["default"] = param.default
            if param.name in hints:
                argument["type"] = portable_name(hints[param.name])
            activity["arguments"].append(argument)
        activities.append(activity)
    return activities


def portable_name(annotation: object) -> str:
    """chaoslib's portable type name, after unwrapping ``X | None`` and generic aliases such as ``list[str]``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        held = [a for a in typing.get_args(annotation) if a is not type(None)]
        names = {portable_name(a) for a in held}
        return names.pop() if len(names) == 1 else "object"
    origin = typing.get_origin(annotation)
    if origin is not None and isinstance(origin, type):
        return portable_type_name(origin)
    return portable_type_name(annotation)
