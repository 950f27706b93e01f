"""Judge a Chaos Toolkit journal ourselves.

``chaos run`` exits 0 when the steady state is not met before the method, and it does not fail a run whose
method activities raised. A CI gate cannot trust that exit code, so this module reads the journal and gives one
of a few outcomes, each with its own exit code.
"""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UNREACHABLE_ERRORS = ("TargetUnreachable", "TargetMisconfigured")
"""Exception names (from chaoslib_ext.errors) that mean the target, not the system under test, is at fault."""


class Outcome(enum.Enum):
    """What a run proved. The value is the process exit code ``gameday`` uses for it."""

    PASS = 0
    DEVIATED = 1
    BASELINE_NOT_MET = 3
    ACTIVITY_FAILED = 4
    TARGET_UNREACHABLE = 5
    INTERRUPTED = 6
    INVALID_JOURNAL = 7
    SAFEGUARD_TRIPPED = 9
    """A safeguard (chaoslib_ext.safeguards) aborted the run because a hard limit was crossed; rollbacks ran."""

    @property
    def exit_code(self) -> int:
        return self.value


SEVERITY = [
    Outcome.INVALID_JOURNAL,
    Outcome.TARGET_UNREACHABLE,
    Outcome.SAFEGUARD_TRIPPED,
    Outcome.INTERRUPTED,
    Outcome.BASELINE_NOT_MET,
    Outcome.DEVIATED,
    Outcome.ACTIVITY_FAILED,
    Outcome.PASS,
]
"""When a suite has several outcomes, the earliest in this list decides the exit code."""


@dataclass(frozen=True)
class ProbeResult:
    phase: str
    name: str
    status: str
    output: Any
    tolerance: Any
    met: bool | None
    exception: str | None = None


@dataclass(frozen=True)
class Verdict:
    title: str
    outcome: Outcome
    reasons: list[str] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)


def _exception_text(run: dict) -> str | None:
    exc = run.get("exception")
    if not exc:
        return None
    text = "".join(exc) if isinstance(exc, list) else str(exc)
    last_line = text.strip().splitlines()[-1] if text.strip() else ""
    # chaoslib wraps every activity error in ActivityFailed; the wrapped exception is the informative part.
    return last_line.removeprefix("chaoslib.exceptions.ActivityFailed: ") or None


def _hypothesis_probes(phase: str, state: dict | None) -> list[ProbeResult]:
    if not state:
        return []
    results = []
    for run in state.get("probes", []):
        activity = run.get("activity", {})
        results.append(
            ProbeResult(
                phase=phase,
                name=activity.get("name", "?"),
                status=run.get("status", "?"),
                output=run.get("output"),
                tolerance=activity.get("tolerance"),
                met=run.get("tolerance_met"),
                exception=_exception_text(run),
            )
        )
    return results


def judge(journal: dict, safeguard_trips: list[dict] | None = None) -> Verdict:
    """The outcome of one experiment run, with reasons a person can act on. ``safeguard_trips`` are the run's
    ``safeguard.tripped`` timeline events: an interruption they caused is a finding, not an operator's Ctrl-C."""
    title = journal.get("experiment", {}).get("title", "?")
    status = journal.get("status")
    states = journal.get("steady_states") or {}
    before, after = states.get("before"), states.get("after")
    probes = _hypothesis_probes("before", before) + _hypothesis_probes("after", after)
    method_runs = [r for r in journal.get("run", []) if isinstance(r, dict)]
    rollback_runs = [r for r in journal.get("rollbacks", []) if isinstance(r, dict)]
    every_run = method_runs + rollback_runs
    failed_activities = [r for r in every_run if r.get("status") != "succeeded"]
    errors = [e for e in (_exception_text(r) for r in every_run) if e] + [p.exception for p in probes if p.exception]

    def failed_probe_reasons(phase: str) -> list[str]:
        return [
            f"{p.phase}: {p.name} = {p.output!r}, tolerance {p.tolerance!r}"
            + (f" ({p.exception})" if p.exception else "")
            for p in probes
            if p.phase == phase and (p.met is False or p.status != "succeeded")
        ]

    unreachable = [e for e in errors if any(name in e for name in UNREACHABLE_ERRORS)]
    if unreachable:
        return Verdict(title, Outcome.TARGET_UNREACHABLE, unreachable, probes)
    if safeguard_trips:
        rolled_back = [r.get("activity", {}).get("name", "?") for r in rollback_runs]
        return Verdict(title, Outcome.SAFEGUARD_TRIPPED, [
            f"safeguard: {t.get('reason', t)}; experiment aborted" for t in safeguard_trips
        ] + [f"rollbacks run: {', '.join(rolled_back) or 'none declared'}"], probes)
    if status in ("interrupted", "aborted"):
        return Verdict(title, Outcome.INTERRUPTED, [f"run {status}"], probes)
    if before is None or not before.get("steady_state_met"):
        return Verdict(
            title, Outcome.BASELINE_NOT_MET,
            failed_probe_reasons("before") or ["the steady state was not checked before the method"], probes,
        )
    if journal.get("deviated") or (after is not None and not after.get("steady_state_met")):
        return Verdict(title, Outcome.DEVIATED, failed_probe_reasons("after"), probes)
    if after is None:
        return Verdict(title, Outcome.ACTIVITY_FAILED, ["the steady state was not checked after the method"], probes)
    if failed_activities or status != "completed":
        reasons = [
            f"{r.get('activity', {}).get('name', '?')}: {_exception_text(r) or r.get('status')}" for r in failed_activities
        ] or [f"run status {status!r}"]
        return Verdict(title, Outcome.ACTIVITY_FAILED, reasons, probes)
    return Verdict(title, Outcome.PASS, [], probes)


def judge_file(path: Path) -> Verdict:
    try:
        journal = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return Verdict(str(path), Outcome.INVALID_JOURNAL, [f"cannot read journal {path}: {exc}"])
    if not isinstance(journal, dict) or "steady_states" not in journal:
        return Verdict(str(path), Outcome.INVALID_JOURNAL, [f"{path} is not a Chaos Toolkit journal"])
    return judge(journal, _safeguard_trips(Path(path).parent / "timeline.jsonl"))


def _safeguard_trips(timeline_path: Path) -> list[dict]:
    trips = []
    try:
        lines = timeline_path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("kind") == "safeguard.tripped":
            trips.append(event)
    return trips


def overall(verdicts: list[Verdict]) -> Outcome:
    if not verdicts:
        return Outcome.INVALID_JOURNAL
    return min((v.outcome for v in verdicts), key=SEVERITY.index)


def render(verdict: Verdict) -> str:
    lines = [f"{verdict.outcome.name:<18} {verdict.title}"]
    for p in verdict.probes:
        mark = "ok " if p.met and p.status == "succeeded" else "NO "
        lines.append(f"  {mark} [{p.phase:<6}] {p.name}: {p.output!r} (tolerance {p.tolerance!r})")
    lines.extend(f"  reason: {r}" for r in verdict.reasons)
    return "\n".join(lines)
