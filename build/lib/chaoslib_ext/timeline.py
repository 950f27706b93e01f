"""The run's timeline: one JSON line per fault or observation, appended by actions and probes.

The timeline is how a probe learns when the fault it measures from happened (Chaos Toolkit does not pass one
activity's output to the next), and it becomes the game-day report. The file is chosen by, in order, the
``gameday_timeline`` configuration key, the ``GAMEDAY_TIMELINE`` environment variable, or ``./timeline.jsonl``
beside the journal that ``chaos run`` writes.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from chaoslib_ext.errors import NoData

DEFAULT_TIMELINE = "timeline.jsonl"


def timeline_path(configuration: Mapping[str, Any] | None = None) -> Path:
    configured = (configuration or {}).get("gameday_timeline") or os.environ.get("GAMEDAY_TIMELINE")
    return Path(configured or DEFAULT_TIMELINE)


def record(kind: str, configuration: Mapping[str, Any] | None = None, at: float | None = None, **data: Any) -> dict:
    """Append one event and return it. ``kind`` is dotted, e.g. ``fault.kill`` or ``observation.recovered``."""
    event = {"at": time.time() if at is None else at, "kind": kind, **data}
    path = timeline_path(configuration)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(event, sort_keys=True) + "\n")
    return event


def read(configuration: Mapping[str, Any] | None = None) -> list[dict]:
    path = timeline_path(configuration)
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            events.append(json.loads(line))
    return events


def last(kind_prefix: str, configuration: Mapping[str, Any] | None = None) -> dict | None:
    """The newest event whose kind starts with ``kind_prefix``, or None."""
    matching = [e for e in read(configuration) if e.get("kind", "").startswith(kind_prefix)]
    return max(matching, key=lambda e: e["at"]) if matching else None


def current_run(configuration: Mapping[str, Any] | None = None) -> list[dict]:
    """Events since the newest ``run.started`` marker (written by ``chaoslib_ext.controls``), oldest first.

    Without a marker the whole timeline is one run, which is what a probe called outside an experiment sees.
    """
    events = sorted(read(configuration), key=lambda e: e["at"])
    starts = [i for i, e in enumerate(events) if e.get("kind") == "run.started"]
    return events[starts[-1]:] if starts else events


def run_started_at(configuration: Mapping[str, Any] | None = None) -> float | None:
    run = current_run(configuration)
    return float(run[0]["at"]) if run and run[0].get("kind") == "run.started" else None


def method_started(run: list[dict]) -> bool:
    return any(e.get("kind") == "run.method_started" for e in run)


def faults_of_this_run(kinds: Collection[str], configuration: Mapping[str, Any] | None = None,
                       needed_for: str = "") -> list[dict]:
    """This run's events of any of ``kinds`` (``fault.kill``...), oldest first: the phase-aware rule every probe
    that measures "after this run's fault" follows.

    Before the method (the first pass of the steady-state hypothesis) there is none yet, and the result is
    ``[]``: nothing has been broken, so the caller returns its baseline. Once the method has started, none is
    ``NoData``: a probe must never pass because the fault it measures never happened."""
    run = current_run(configuration)
    found = [e for e in run if e.get("kind") in kinds]
    if not found and method_started(run):
        raise NoData(f"the method ran but no {' or '.join(sorted(kinds))} was recorded in this run"
                     + (f": {needed_for}" if needed_for else ""))
    return found
