"""Errors that carry behaviour.

Every error an activity raises derives from Chaos Toolkit's ``ActivityFailed``, so ``chaos run`` records it as a
failed activity. The subclasses let the gate tell a broken target from a blown budget by reading the journal:
chaoslib writes ``<ExceptionName>: <message>`` into the activity's ``exception`` field.
"""
from __future__ import annotations

from chaoslib.exceptions import ActivityFailed


class GamedayError(ActivityFailed):
    """Base of every error raised by this framework's activities."""


class InvalidArgument(GamedayError):
    """An activity was called with an argument it cannot act on. Raised before any side effect."""


class TargetUnreachable(GamedayError):
    """The target (local stack control API, Kubernetes API, Prometheus, Mongo) did not answer."""


class TargetMisconfigured(GamedayError):
    """The configuration names a target we cannot use (unknown kind, missing setting, not allowed)."""


class BudgetExceeded(GamedayError):
    """A measurement went past its budget before the probe could finish (for example, a recovery timeout)."""


class NoData(GamedayError):
    """A probe found no samples to judge. "No samples" is never a pass."""
