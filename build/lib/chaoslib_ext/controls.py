"""A Chaos Toolkit control that marks the run's boundaries in the timeline.

Chaos Toolkit judges tolerances only in the steady-state hypothesis, which runs both before and after the
method. A probe such as "seconds to recover from this run's fault" needs to know which of the two it is in:
before the method there is nothing to recover from; after it, a missing fault is a failure, not a pass.
Declare it in an experiment with::

    controls:
      - name: gameday-timeline
        provider: {type: python, module: chaoslib_ext.controls}
"""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration

from chaoslib_ext import timeline

__all__ = ["before_experiment_control", "before_method_control", "after_method_control", "after_experiment_control"]


def before_experiment_control(context: dict, configuration: Configuration = None, **kwargs: Any) -> None:
    timeline.record("run.started", configuration, title=context.get("title", ""))


def before_method_control(context: Any, configuration: Configuration = None, **kwargs: Any) -> None:
    timeline.record("run.method_started", configuration)


def after_method_control(context: Any, configuration: Configuration = None, **kwargs: Any) -> None:
    timeline.record("run.method_ended", configuration)


def after_experiment_control(context: dict, state: Any = None, configuration: Configuration = None, **kwargs: Any) -> None:
    status = state.get("status") if isinstance(state, dict) else None
    timeline.record("run.ended", configuration, status=status, deviated=bool(isinstance(state, dict) and state.get("deviated")))
