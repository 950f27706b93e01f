"""The evidence of a run directory, read once: verdicts, a merged timeline, fault windows, SLI samples and
measurements against budgets. Everything the HTML, JUnit and Markdown writers show comes from here.

A run directory is what ``gameday run``/``gameday gate`` writes: one ``NN-<experiment>/`` folder per experiment,
each with ``journal.json`` (Chaos Toolkit), ``timeline.jsonl`` (our actions, probes and controls) and
``sli.jsonl`` (the SLI sampler). A single experiment's folder is accepted too.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chaoslib_ext.gameday.redact import redact_data, redact_text, secret_values
from chaoslib_ext.gameday.verdict import Outcome, Verdict, judge_file, overall

SUBSTITUTIONS_FILE = "substitutions.json"
"""In a run directory: what stood in for a real part of the stack (a JSON list of sentences), written before the
experiments run (chaoslib_ext.gameday.orchestrate.record_substitutions)."""
SAMPLE_LIST_KEYS = ("seconds", "samples", "values")
"""Keys under which a distribution probe lists its raw samples (probes.failover lists ``seconds``)."""
BUDGET_KEYS = ("budget_seconds", "budget", "rto_budget_seconds", "rpo_budget_seconds")


class ReportError(ValueError):
    """The directory holds nothing to report on."""


@dataclass(frozen=True)
class Event:
    at: float
    category: str
    """run, fault, heal, alert, observation, probe, action, rollback, safeguard."""
    kind: str
    detail: str


@dataclass(frozen=True)
class FaultWindow:
    label: str
    start: float
    end: float


@dataclass
class Measurement:
    """A number with a budget: an RTO, an RPO, a failover time, a lag. ``samples`` may be one value."""

    name: str
    experiment: str
    samples: list[float] = field(default_factory=list)
    p50: float | None = None
    p95: float | None = None
    max: float | None = None
    budget: float | None = None
    met: bool | None = None

    @property
    def within_budget(self) -> bool | None:
        worst = self.p95 if self.p95 is not None else self.max
        if worst is None or self.budget is None:
            return None
        return worst <= self.budget


@dataclass
class ExperimentEvidence:
    name: str
    run_dir: Path
    verdict: Verdict
    journal: dict[str, Any]
    events: list[Event]
    faults: list[FaultWindow]
    sli: list[dict[str, Any]]
    started_at: float | None
    ended_at: float | None
    duration: float | None

    @property
    def title(self) -> str:
        return self.verdict.title


@dataclass
class RunEvidence:
    root: Path
    experiments: list[ExperimentEvidence]
    measurements: list[Measurement]
    objective: float | None
    """SLO-1's availability objective as a fraction (0.995), for the burn rate."""
    substitutions: list[str] = field(default_factory=list)
    """Parts of the stack that stood in for the real ones during the run (SUBSTITUTIONS_FILE)."""

    @property
    def outcome(self) -> Outcome:
        return overall([e.verdict for e in self.experiments])


def _iso(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a SIGKILL
        if isinstance(row, dict) and isinstance(row.get("at"), (int, float)):
            rows.append(row)
    return sorted(rows, key=lambda r: r["at"])


def short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _category(kind: str) -> str:
    if kind == "fault.healed":
        return "heal"
    if kind.startswith("observation.alert"):
        return "alert"
    return kind.split(".", 1)[0]


def _timeline_events(rows: list[dict]) -> list[Event]:
    events = []
    for row in rows:
        kind = str(row.get("kind", "?"))
        detail = {k: v for k, v in row.items() if k not in ("at", "kind")}
        events.append(Event(float(row["at"]), _category(kind), kind, short(detail, 240)))
    return events


def _journal_events(journal: dict) -> list[Event]:
    events = []

    def add(run: dict, category: str, label: str) -> None:
        at = _iso(run.get("start"))
        if at is None:
            return
        activity = run.get("activity") or {}
        status = run.get("status", "?")
        met = run.get("tolerance_met")
        verdict = "" if met is None else (" tolerance met" if met else " TOLERANCE NOT MET")
        detail = f"{activity.get('name', '?')} [{status}{verdict}] -> {short(run.get('output'), 200)}"
        if run.get("exception"):
            detail += " | " + short(str(run["exception"][-1] if isinstance(run["exception"], list) else run["exception"]).strip(), 200)
        events.append(Event(at, category, f"{label}.{activity.get('type', 'activity')}", detail))

    for phase in ("before", "after"):
        for run in ((journal.get("steady_states") or {}).get(phase) or {}).get("probes", []):
            add(run, "probe", f"hypothesis-{phase}")
    for run in journal.get("run", []) or []:
        if isinstance(run, dict):
            add(run, "probe" if (run.get("activity") or {}).get("type") == "probe" else "action", "method")
    for run in journal.get("rollbacks", []) or []:
        if isinstance(run, dict):
            add(run, "rollback", "rollback")
    return events


def _fault_windows(rows: list[dict], run_end: float | None) -> list[FaultWindow]:
    """When each fault was in force: from its record to its heal, its expiry, or (for a kill) its recovery."""
    windows = []
    for index, row in enumerate(rows):
        kind = row.get("kind", "")
        if not kind.startswith("fault.") or kind == "fault.healed":
            continue
        start = float(row.get("applied_at") or row["at"])
        later = rows[index + 1:]
        if kind == "fault.kill":
            ends = [r["at"] for r in later if r.get("kind") in ("observation.recovered", "observation.failover")]
            end = ends[0] if ends else start + 1.0
            label = f"kill {row.get('instance', '')}".strip()
        else:
            name = kind.removeprefix("fault.")
            heals = [r["at"] for r in later if r.get("kind") == "fault.healed"
                     and str(r.get("fault", "")).replace("-", "_") in (name, "kafka_partition" if name == "partition" else name)]
            candidates = [c for c in (heals[0] if heals else None, row.get("expires_at"), run_end) if c is not None]
            end = min(candidates) if candidates else start + 1.0
            label = name.replace("_", " ")
            if "ratio" in row:
                label += f" {row['ratio']:g}x{row.get('status', '')}"
            if "between" in row:
                label += f" {','.join(row['between']) if isinstance(row['between'], list) else row['between']}"
        windows.append(FaultWindow(label, start, max(float(end), start)))
    return windows


def _numbers(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _range_budget(tolerance: Any) -> float | None:
    if isinstance(tolerance, dict) and tolerance.get("type") == "range":
        bounds = tolerance.get("range")
        if isinstance(bounds, list) and len(bounds) == 2 and isinstance(bounds[1], (int, float)):
            return float(bounds[1])
    return None


def _measurement_from(name: str, experiment: str, output: Any, tolerance: Any, met: bool | None) -> Measurement | None:
    """Keyed off output shapes, not probe names, so new RTO/RPO/failover probes show up by themselves:
    a dict with p50/p95/max (and a budget key), or a plain number judged with a range tolerance."""
    if isinstance(output, dict) and any(isinstance(output.get(k), (int, float)) for k in ("p50", "p95", "max")):
        if output.get("phase") == "before" or output.get("n") == 0:
            return None  # the baseline placeholder: nothing was broken yet
        samples = next((s for s in (_numbers(output.get(k)) for k in SAMPLE_LIST_KEYS) if s), [])
        budget = next((float(output[k]) for k in BUDGET_KEYS if isinstance(output.get(k), (int, float))), None)
        if budget is None:
            budget = _range_budget(tolerance)
        return Measurement(name, experiment, samples, _num(output.get("p50")), _num(output.get("p95")),
                           _num(output.get("max")), budget, met)
    if isinstance(output, dict) and isinstance(output.get("webhook_s"), (int, float)):
        value = float(output["webhook_s"])
        return Measurement(f"{name} (webhook)", experiment, [value], value, value, value,
                           _num(output.get("predicted_upper_s")), met)
    if isinstance(output, (int, float)) and not isinstance(output, bool):
        budget = _range_budget(tolerance)
        if budget is None:
            return None
        value = float(output)
        return Measurement(name, experiment, [value], value, value, value, budget, met)
    return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _measurements(experiment: ExperimentEvidence) -> list[Measurement]:
    found = []
    seen: set[str] = set()
    after = ((experiment.journal.get("steady_states") or {}).get("after") or {}).get("probes", [])
    method = [r for r in experiment.journal.get("run", []) or [] if isinstance(r, dict)]
    for run in [*after, *method]:
        activity = run.get("activity") or {}
        if activity.get("type", "probe") != "probe":
            continue
        # A method probe that watched what the hypothesis then judged reports the same result: count it once.
        output = run.get("output")
        key = (json.dumps(output, sort_keys=True, default=str) if isinstance(output, dict)
               else f"{activity.get('name')}={output!r}")
        if key in seen:
            continue
        seen.add(key)
        measurement = _measurement_from(activity.get("name", "?"), experiment.name, run.get("output"),
                                        activity.get("tolerance"), run.get("tolerance_met"))
        if measurement is not None:
            found.append(measurement)
    return found


def merge_measurements(measurements: list[Measurement]) -> list[Measurement]:
    """One row per probe name: repeated trials (the game-day suite runs some twice) become one distribution."""
    merged: dict[str, Measurement] = {}
    for m in measurements:
        if m.name not in merged:
            merged[m.name] = Measurement(m.name, m.experiment, list(m.samples), m.p50, m.p95, m.max, m.budget, m.met)
            continue
        into = merged[m.name]
        into.samples += m.samples
        into.experiment += f", {m.experiment}"
        into.met = None if None in (into.met, m.met) else (into.met and m.met)
        if into.samples:
            ordered = sorted(into.samples)
            into.p50 = statistics.median(ordered)
            into.p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            into.max = ordered[-1]
    return list(merged.values())


def _experiment_dirs(root: Path) -> list[Path]:
    if (root / "journal.json").is_file():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "journal.json").is_file())


def _objective(journals: list[dict]) -> float | None:
    """SLO-1's objective, from the spec the run's experiments named (``slo_spec``), else the default spec."""
    from chaoslib_ext.slo import spec as slo_spec

    named = []
    for journal in journals:
        experiment = journal.get("experiment")
        configuration = experiment.get("configuration") if isinstance(experiment, dict) else None
        named.append(configuration.get("slo_spec") if isinstance(configuration, dict) else None)
    configuration = {"slo_spec": next((n for n in named if isinstance(n, str) and n), None)}
    try:
        catalog = slo_spec.load(slo_spec.configured_path(configuration))
        objective = catalog.slo("processor-availability").objective
        return None if objective is None else float(objective) / 100
    except (slo_spec.SpecError, KeyError, ValueError):
        return None


def _substitutions(root: Path) -> list[str]:
    try:
        notes = json.loads((root / SUBSTITUTIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(n) for n in notes] if isinstance(notes, list) else []


def load_run(root: Path, secrets: set[str] | None = None) -> RunEvidence:
    """Everything in ``root``, with secrets masked (by name and by the values in ``secrets``)."""
    root = Path(root)
    if not root.is_dir():
        raise ReportError(f"{root} is not a directory")
    dirs = _experiment_dirs(root)
    if not dirs:
        raise ReportError(f"{root} holds no journal.json (neither in it nor in its sub-directories)")
    values = secret_values() if secrets is None else secrets
    experiments = []
    for run_dir in dirs:
        verdict = judge_file(run_dir / "journal.json")
        try:
            journal = json.loads((run_dir / "journal.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            journal = {}
        journal = redact_data(journal if isinstance(journal, dict) else {}, values)
        verdict = Verdict(redact_text(verdict.title, values), verdict.outcome,
                          [redact_text(r, values) for r in verdict.reasons], verdict.probes)
        rows = redact_data(_jsonl(run_dir / "timeline.jsonl"), values)
        started, ended = _iso(journal.get("start")), _iso(journal.get("end"))
        events = sorted(_timeline_events(rows) + _journal_events(journal), key=lambda e: e.at)
        experiments.append(ExperimentEvidence(
            name=run_dir.name, run_dir=run_dir, verdict=verdict, journal=journal, events=events,
            faults=_fault_windows(rows, ended), sli=_jsonl(run_dir / "sli.jsonl"), started_at=started,
            ended_at=ended, duration=_num(journal.get("duration")),
        ))
    measurements = merge_measurements([m for e in experiments for m in _measurements(e)])
    return RunEvidence(root, experiments, measurements, _objective([e.journal for e in experiments]),
                       _substitutions(root))


def burn(evidence: RunEvidence, experiment: ExperimentEvidence) -> dict[str, float] | None:
    """Error budget burn during one experiment, from its SLI samples: the peak burn rate (error ratio over the
    allowed error ratio) and the share of the 30-day budget the experiment consumed."""
    objective = evidence.objective
    samples = [s for s in experiment.sli if isinstance(s.get("availability"), (int, float))]
    if objective is None or len(samples) < 2:
        return None
    allowed = 1 - objective
    consumed = 0.0
    for previous, current in zip(samples, samples[1:]):
        error = 1 - float(previous["availability"])
        consumed += max(0.0, error) * (float(current["at"]) - float(previous["at"]))
    peak = max(max(0.0, 1 - float(s["availability"])) / allowed for s in samples)
    period_seconds = 30 * 86400
    return {"peak_burn_rate": peak, "budget_consumed_pct": 100 * consumed / (allowed * period_seconds),
            "seconds_sampled": float(samples[-1]["at"]) - float(samples[0]["at"])}
