"""``gameday run``, ``gameday gate`` and ``gameday verdict``: run experiments and judge their journals."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from chaoslib_ext.cli.common import EXIT_CODES_HELP, EXIT_USAGE, parse_vars
from chaoslib_ext.gameday import orchestrate
from chaoslib_ext.gameday import verdict as verdicts

DEFAULT_SUITE = "experiments/suites/gate.yaml"


def cmd_run(args: argparse.Namespace) -> int:
    variables = {"target": args.target, **parse_vars(args.var)}
    missing = [e for e in args.experiments if not Path(e).is_file()]
    if missing:
        print(f"gameday: no such experiment file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    entries = [(Path(e).resolve(), variables) for e in args.experiments]
    refused = orchestrate.refuse_outside_blast_radius(entries)
    if refused is not None:
        return refused
    return orchestrate.run_and_report(entries, orchestrate.run_root(args.run_dir, "run"), variables, args.quiet,
                                      not args.no_report)


def cmd_gate(args: argparse.Namespace) -> int:
    from chaoslib_ext.gameday.suite import SuiteError, load_suite

    try:
        suite = load_suite(Path(args.suite))
    except SuiteError as exc:
        print(f"gameday: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cli_vars = {"target": args.target, **parse_vars(args.var)}
    entries = [(e.path, {**e.vars, **cli_vars}) for e in suite.experiments]
    refused = orchestrate.refuse_outside_blast_radius(entries)
    if refused is not None:
        return refused
    show = None if args.quiet else (lambda message: print(message, flush=True))
    if suite.slo_check and not args.no_slo_check:
        failed = orchestrate.sli_check(dict(cli_vars), args.slo_check_timeout, show)
        if failed is not None:
            return failed
    run_root = orchestrate.run_root(args.run_dir, suite.name)
    if show:
        show(f"suite {suite.name}: {len(suite.experiments)} experiment(s), journals in {run_root}")
    return orchestrate.run_and_report(entries, run_root, cli_vars, args.quiet, not args.no_report)


def cmd_verdict(args: argparse.Namespace) -> int:
    results = [verdicts.judge_file(Path(p)) for p in args.journals]
    for result in results:
        print(verdicts.render(result))
    outcome = verdicts.overall(results)
    print(f"\nverdict: {outcome.name} (exit {outcome.exit_code})")
    return outcome.exit_code


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", choices=["local", "kubernetes"], default=os.environ.get("GAMEDAY_TARGET", "local"),
                   help="where the experiments run (default: $GAMEDAY_TARGET or local)")
    p.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                   help="override an experiment configuration value; repeatable")
    p.add_argument("--run-dir", help=f"where journals go (default: {orchestrate.DEFAULT_RUNS_DIR}/<time>-<name>)")
    p.add_argument("--quiet", action="store_true",
                   help="print only the verdict table (no progress lines, no live SLI values)")
    p.add_argument("--no-report", action="store_true",
                   help="do not write report.html, junit.xml and summary.md into the run directory")


def add_parsers(sub) -> None:
    run = sub.add_parser(
        "run", help="run experiments with `chaos run`, rollbacks always, and judge each journal",
        description="Run experiment files through Chaos Toolkit's own CLI with --rollback-strategy always, one "
        "journal per experiment, and judge the journals ourselves. Ctrl-C or SIGTERM interrupts the current "
        "experiment; its rollbacks still run, and the rest are skipped.",
        epilog="exit codes:\n" + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("experiments", nargs="+", metavar="EXPERIMENT")
    _add_run_options(run)
    run.set_defaults(func=cmd_run)

    gate = sub.add_parser(
        "gate", help="the CI resilience gate: run a suite and exit with a code that says what failed",
        description="Check that every served SLI has series (an alert that cannot fire fails the gate), run the "
        "suite's experiments like `gameday run`, print a verdict table, and exit with the most severe outcome.",
        epilog="exit codes:\n" + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gate.add_argument("suite", nargs="?", default=DEFAULT_SUITE, help="suite file (default: %(default)s)")
    gate.add_argument("--no-slo-check", action="store_true", help="skip the live SLI check")
    gate.add_argument("--slo-check-timeout", type=float, default=60.0,
                      help="seconds to wait for every SLI's series to appear on a fresh stack (default: %(default)s)")
    _add_run_options(gate)
    gate.set_defaults(func=cmd_gate)


def add_verdict_parser(sub) -> None:
    verdict = sub.add_parser(
        "verdict", help="judge Chaos Toolkit journals; the exit code says what failed",
        description="Read journals written by `chaos run` and judge them ourselves: `chaos run` exits 0 when the "
        "baseline is not met, so its exit code cannot gate CI.",
        epilog="exit codes:\n" + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verdict.add_argument("journals", nargs="+", metavar="JOURNAL", help="journal.json files")
    verdict.set_defaults(func=cmd_verdict)
