"""Checks of the arguments experiments pass to actions and probes. Each refusal is an InvalidArgument whose message
names the argument, the value it got and what is allowed, e.g. ``ttl_seconds must be a number > 0 and <= 3600,
got 0``. YAML's ``true`` is a bool, never the number 1."""
from __future__ import annotations

import logging
import math
import warnings
from typing import Any

from chaoslib_ext.errors import InvalidArgument

__all__ = ["number", "whole_number", "flag", "one_of", "renamed", "deprecated"]


def _bounds(greater_than: float | None, at_least: float | None, at_most: float | None) -> str:
    if at_least is not None and at_most is not None:
        return f"within [{at_least:g}, {at_most:g}]"
    low = f"> {greater_than:g}" if greater_than is not None else f">= {at_least:g}" if at_least is not None else ""
    high = f"<= {at_most:g}" if at_most is not None else ""
    return " and ".join(part for part in (low, high) if part)


def _in_bounds(value: float, greater_than: float | None, at_least: float | None, at_most: float | None) -> bool:
    return ((greater_than is None or value > greater_than) and (at_least is None or value >= at_least)
            and (at_most is None or value <= at_most))


def number(name: str, value: Any, *, greater_than: float | None = None, at_least: float | None = None,
           at_most: float | None = None, text_allowed: bool = False) -> float:
    """``value`` as a float, if it is a finite number within the bounds; InvalidArgument naming all three if not.
    ``text_allowed`` also takes a numeric string, as configuration read from the environment is."""
    candidate = value
    if text_allowed and isinstance(value, str):
        try:
            candidate = float(value)
        except ValueError:
            pass
    if (isinstance(candidate, bool) or not isinstance(candidate, (int, float)) or not math.isfinite(candidate)
            or not _in_bounds(candidate, greater_than, at_least, at_most)):
        bounds = _bounds(greater_than, at_least, at_most)
        raise InvalidArgument(f"{name} must be a number{' ' + bounds if bounds else ''}, got {value!r}")
    return float(candidate)


def whole_number(name: str, value: Any, *, at_least: int | None = None, at_most: int | None = None) -> int:
    """``value`` if it is an int within the bounds (not a bool, not 2.0); InvalidArgument naming it if not."""
    if isinstance(value, bool) or not isinstance(value, int) or not _in_bounds(value, None, at_least, at_most):
        bounds = _bounds(None, at_least, at_most)
        raise InvalidArgument(f"{name} must be a whole number{' ' + bounds if bounds else ''}, got {value!r}")
    return value


def flag(name: str, value: Any) -> bool:
    """``value`` if it is true or false; a string such as ``"yes"`` is refused, naming it."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name} must be true or false, got {value!r}")
    return value


def one_of(name: str, value: Any, allowed: tuple) -> Any:
    """``value`` if it is one of ``allowed`` (``True`` is never ``1``); InvalidArgument listing them if not."""
    if isinstance(value, bool) != any(isinstance(a, bool) for a in allowed) or value not in allowed:
        raise InvalidArgument(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    return value


def renamed(new_name: str, value: Any, default: Any, old_name: str, old_value: Any) -> Any:
    """The value of an argument that was renamed: ``old_value`` if the experiment still uses the old name (with a
    deprecation warning in ``chaos run``'s log), else ``value``. Both at once is refused."""
    if old_value is None:
        return value
    if value != default:
        raise InvalidArgument(f"give {new_name} only: {old_name} is its old name")
    deprecated(f"{old_name} is deprecated and will be removed in the next release: use {new_name}")
    return old_value


def deprecated(message: str) -> None:
    """Say ``message`` in ``chaos run``'s log, and as a DeprecationWarning pointing at whoever called the deprecated
    activity (which calls this through one helper of its own, as ``renamed``)."""
    logging.getLogger("chaostoolkit").warning(message)
    warnings.warn(message, DeprecationWarning, stacklevel=4)
