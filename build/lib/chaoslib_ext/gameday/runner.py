"""Run experiments through Chaos Toolkit's own CLI, one journal per experiment, rollbacks always.

`chaos run` is started in its own session so that a terminal's Ctrl-C reaches only us. We then send it one
SIGTERM, which chaoslib turns into an interruption that still plays the rollbacks (with the `always` strategy),
and we wait for it: a second signal during rollbacks would make chaoslib skip the rest of them. If we are
SIGKILLed, chaoslib_ext.gameday.guard (between us and `chaos run`) sends that one SIGTERM for us.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from chaoslib_ext.gameday.sli_sampler import SLI_FILE, SliSampler
from chaoslib_ext.gameday.verdict import Verdict, judge_file

PROGRESS_LINE = re.compile(r"(Steady state hypothesis|Probe:|Action:|Rollback:|Playing your|Experiment ended|"
                           r"not in the given tolerance|=> failed|Let's rollback)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CHAOS = Path(sys.executable).with_name("chaos")


@dataclass(frozen=True)
class ExperimentRun:
    experiment: Path
    run_dir: Path
    verdict: Verdict
    seconds: float
    returncode: int
    interrupted: bool

    @property
    def journal(self) -> Path:
        return self.run_dir / "journal.json"


class _Interrupts:
    """Counts SIGINT/SIGTERM received while a child runs, and forwards the first one to it as SIGTERM."""

    def __init__(self) -> None:
        self.child: subprocess.Popen | None = None
        self.count = 0
        self._saved: dict[int, object] = {}

    def __enter__(self) -> _Interrupts:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame) -> None:
        self.count += 1
        if self.count == 1 and self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)


def run_experiment(
    experiment: Path,
    run_dir: Path,
    variables: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    interrupts: _Interrupts | None = None,
) -> ExperimentRun:
    """Run one experiment with `chaos run --rollback-strategy always`, judge its journal, return both."""
    run_dir.mkdir(parents=True, exist_ok=True)
    guard = [sys.executable, "-m", "chaoslib_ext.gameday.guard"]
    command = [*guard, str(CHAOS), "--log-file", str(run_dir / "chaostoolkit.log"), "run",
               "--journal-path", str(run_dir / "journal.json"), "--rollback-strategy", "always"]
    for key, value in (variables or {}).items():
        command += ["--var", f"{key}={value}"]
    command.append(str(experiment))
    # Unbuffered, so progress lines arrive as the steps happen rather than all at the end.
    env = dict(os.environ, GAMEDAY_TIMELINE=str(run_dir / "timeline.jsonl"), PYTHONUNBUFFERED="1",
               GAMEDAY_GUARD_PARENT=str(os.getpid()))
    started = time.monotonic()
    with (run_dir / "chaos-output.txt").open("w", encoding="utf-8") as transcript:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                 cwd=run_dir, start_new_session=True)
        if interrupts is not None:
            interrupts.child = child
        assert child.stdout is not None
        for line in child.stdout:
            plain = ANSI.sub("", line)
            transcript.write(plain)
            transcript.flush()
            if progress is not None and PROGRESS_LINE.search(plain):
                progress("  " + plain.split("] ", 1)[-1].strip())
        returncode = child.wait()
    return ExperimentRun(
        experiment=experiment, run_dir=run_dir, verdict=judge_file(run_dir / "journal.json"),
        seconds=round(time.monotonic() - started, 1), returncode=returncode,
        interrupted=bool(interrupts and interrupts.count),
    )


def run_experiments(
    entries: list[tuple[Path, Mapping[str, str]]],
    run_root: Path,
    progress: Callable[[str], None] | None = None,
    sampler: SliSampler | None = None,
) -> list[ExperimentRun]:
    """Run each experiment in turn into ``run_root/NN-<name>/``. After an interruption the rest are skipped.

    With a ``sampler``, each experiment's SLI samples go to ``sli.jsonl`` in its own run directory."""
    results = []
    with _Interrupts() as interrupts:
        for index, (experiment, variables) in enumerate(entries, start=1):
            if interrupts.count:
                break
            if progress is not None:
                progress(f"[{index}/{len(entries)}] {experiment.name}")
            run_dir = run_root / f"{index:02d}-{experiment.stem}"
            if sampler is not None:
                sampler.retarget(run_dir / SLI_FILE)
            try:
                results.append(run_experiment(experiment, run_dir, variables, progress, interrupts))
            finally:
                if sampler is not None:
                    sampler.retarget(None)
    return results
