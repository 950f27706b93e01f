"""How ``gameday run`` and ``gameday gate`` drive a run: check the blast radius, check the SLIs, run the experiments
with live progress, mask secrets, print the verdict table and write the report. Lines go to stdout, refusals and
failures to stderr; every function returns the exit code the command ends with (None: go on)."""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from chaoslib_ext.gameday import verdict as verdicts

DEFAULT_RUNS_DIR = ".gameday/runs"
EXIT_REFUSED = verdicts.Outcome.TARGET_UNREACHABLE.exit_code
"""A target outside the blast-radius allow-list is a misconfigured target: refused before any side effect."""

Entries = list[tuple[Path, dict]]
"""Experiment files, each with the variables (``--var`` over the suite's) it runs with."""


class Feedback:
    """Progress lines with live SLI values while experiments run; the SLI sampler feeds the report's plots too."""

    def __init__(self, configuration: dict, quiet: bool):
        from chaoslib_ext.gameday.progress import Progress
        from chaoslib_ext.gameday.sli_sampler import SliSampler

        self.sampler = SliSampler(configuration)
        self.progress = None if quiet else Progress(sli=lambda: self.sampler.latest)

    def __enter__(self) -> Feedback:
        self.sampler.start()
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.sampler.stop()


def refuse_outside_blast_radius(entries: list[tuple[Path | None, dict]]) -> int | None:
    """Check every experiment's target (what its file declares, overridden by the --var/suite values)."""
    from chaoslib_ext.gameday.safety import BlastRadiusRefused, check_blast_radius, declared_configuration

    for experiment, variables in entries:
        declared = declared_configuration(experiment) if experiment is not None else {}
        try:
            check_blast_radius({**declared, **variables})
        except BlastRadiusRefused as exc:
            where = f" ({experiment.name})" if experiment is not None else ""
            print(f"gameday: {exc}{where}", file=sys.stderr)
            return EXIT_REFUSED
    return None


def run_root(run_dir: str | None, label: str) -> Path:
    """``run_dir``, or a new directory under .gameday/runs named by the time and ``label``."""
    if run_dir:
        return Path(run_dir).resolve()
    return (Path(DEFAULT_RUNS_DIR) / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}").resolve()


def _redact_runs(runs, configurations: list[dict]) -> set[str]:
    from chaoslib_ext.gameday.redact import redact_run_dir, secret_values

    secrets = set()
    for configuration in configurations:
        secrets |= secret_values(variables=configuration)
    for run in runs:
        redact_run_dir(run.run_dir, secrets)
    return secrets


def _write_report(root: Path, secrets: set[str] | None) -> None:
    from chaoslib_ext.gameday.report import ReportError, write_report

    try:
        _evidence, paths = write_report(root, secrets=secrets)
    except ReportError as exc:
        print(f"gameday: no report: {exc}", file=sys.stderr)
        return
    print(f"report: {', '.join(str(p) for p in paths)}")


def report_runs(runs, root: Path, write_report: bool, secrets: set[str] | None = None) -> int:
    """The verdict table and the overall verdict; the report too unless told not to."""
    from chaoslib_ext.gameday.redact import redact_text

    print(f"\n{'outcome':<19}{'seconds':>8}  experiment")
    for run in runs:
        print(f"{run.verdict.outcome.name:<19}{run.seconds:>8.1f}  {run.experiment.name}")
        for reason in run.verdict.reasons:
            print(f"{'':<29}{redact_text(reason, secrets or ())}")
    outcome = verdicts.overall([r.verdict for r in runs])
    if runs and any(r.interrupted for r in runs):
        outcome = verdicts.Outcome.INTERRUPTED
    print(f"\nverdict: {outcome.name} (exit {outcome.exit_code}); journals in {root}")
    if runs and write_report:
        _write_report(root, secrets)
    return outcome.exit_code


def record_substitutions(configuration: dict, root: Path) -> list[str]:
    """What stands in for a real part of the stack on the target (MongoDB's stand-in on the offline kind
    overlay), printed and kept in the run directory, where the report reads it. A target that cannot be asked is
    left to the experiments to report."""
    from chaoslib_ext import targets
    from chaoslib_ext.errors import GamedayError
    from chaoslib_ext.gameday.report.model import SUBSTITUTIONS_FILE

    try:
        target = targets.from_configuration(configuration)
        try:
            notes = target.substitutions()
        finally:
            target.close()
    except GamedayError:
        return []
    if notes:
        root.mkdir(parents=True, exist_ok=True)
        (root / SUBSTITUTIONS_FILE).write_text(json.dumps(notes, indent=2) + "\n", encoding="utf-8")
        for note in notes:
            print(f"substitution in force: {note}", flush=True)
    return notes


def run_and_report(entries: Entries, root: Path, variables: dict, quiet: bool, write_report: bool) -> int:
    """Run the experiments with live progress, mask the secrets of every entry's variables, report, and return
    the exit code of the overall verdict."""
    from chaoslib_ext.gameday.runner import run_experiments

    record_substitutions(variables, root)
    with Feedback(variables, quiet) as feedback:
        runs = run_experiments(entries, root, feedback.progress, feedback.sampler)
    secrets = _redact_runs(runs, [v for _, v in entries])
    return report_runs(runs, root, write_report, secrets)


def sli_check(configuration: dict, timeout: float, show: Callable[[str], None] | None) -> int | None:
    """The gate's first step: every SLI selector the alerts use has series on the target. None when it passes,
    else the exit code, with what is missing on stderr."""
    from chaoslib_ext.errors import GamedayError
    from chaoslib_ext.sli import sli_queries_have_data

    deadline = time.monotonic() + timeout
    try:
        # A stack that just started has not scraped, or processed, anything yet: give its series time to
        # appear. A label that does not exist never appears, and fails once the wait is over.
        while True:
            check = sli_queries_have_data(configuration=configuration)
            if check["verdict"] == "PASS" or time.monotonic() >= deadline:
                break
            time.sleep(1)
    except GamedayError as exc:
        print(f"gameday: the SLI check could not reach the target: {type(exc).__name__}: {exc}", file=sys.stderr)
        return verdicts.Outcome.TARGET_UNREACHABLE.exit_code
    if check["verdict"] != "PASS":
        print(f"gameday: SLI check {check['verdict']}: alerts on these selectors can never fire:", file=sys.stderr)
        for miss in check["missing"]:
            print(f"  {miss['slo']}: {miss['query']}", file=sys.stderr)
        return verdicts.Outcome.TARGET_UNREACHABLE.exit_code
    if show:
        show(f"SLI check PASS: {check['checked']} selectors of {len(check['slos'])} SLOs have series")
    return None
