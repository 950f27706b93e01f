"""``gameday report``, ``sweep``, ``schedule`` and ``restore``: evidence, clean-up, schedules and recovery."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from chaoslib_ext.cli.common import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, parse_vars
from chaoslib_ext.gameday import orchestrate


def cmd_report(args: argparse.Namespace) -> int:
    from chaoslib_ext.gameday.redact import secret_values
    from chaoslib_ext.gameday.report import ReportError, write_report
    from chaoslib_ext.gameday.report.markdown import markdown_summary

    try:
        evidence, paths = write_report(Path(args.run_dir), Path(args.out) if args.out else None,
                                       secrets=secret_values())
    except ReportError as exc:
        print(f"gameday: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.markdown:
        print(markdown_summary(evidence, [p.name for p in paths]), end="")
    else:
        print(f"{evidence.outcome.name}: {len(evidence.experiments)} experiment(s); wrote "
              f"{', '.join(str(p) for p in paths)}")
    return evidence.outcome.exit_code if args.exit_code else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from chaoslib_ext.errors import GamedayError
    from chaoslib_ext.gameday.sweep import report_lines, sweep

    configuration = {"target": args.target, **parse_vars(args.var)}
    refused = orchestrate.refuse_outside_blast_radius([(None, configuration)])
    if refused is not None:
        return refused
    try:
        result = sweep(configuration, force=args.force)
    except GamedayError as exc:
        print(f"gameday: sweep could not reach the target: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if args.json:
        print(json.dumps(result.__dict__, indent=2, sort_keys=True, default=str))
    else:
        print("\n".join(report_lines(result)))
    return 1 if result.failed else 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from chaoslib_ext.gameday.safety import BlastRadiusRefused, check_kubernetes
    from chaoslib_ext.gameday.schedule import CronError, crontab_line, kubernetes_manifest
    from chaoslib_ext.gameday.suite import SuiteError, load_suite

    try:
        suite = load_suite(Path(args.suite))
    except SuiteError as exc:
        print(f"gameday: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.target == "local":
            print(crontab_line(Path(args.suite).resolve(), args.cron, Path.cwd().resolve()))
            return 0
        # The namespace is checked against the allow-list now, not when the job first runs at 3 a.m.
        check_kubernetes({"kube_context": "in-cluster", "namespace": args.namespace},
                         {**os.environ, "GAMEDAY_ALLOWED_CONTEXTS": "in-cluster", "CHAOSTOOLKIT_IN_POD": "true"})
        suite_path = os.path.relpath(Path(args.suite).resolve(), Path.cwd().resolve())
        print(kubernetes_manifest(suite_path, suite.name, args.cron, args.namespace, args.image, args.name), end="")
    except CronError as exc:
        print(f"gameday: --cron {args.cron!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BlastRadiusRefused as exc:
        print(f"gameday: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from chaoslib_ext.errors import GamedayError
    from chaoslib_ext.gameday.restore import run_restore

    configuration = {"target": args.target, **({"local_control_url": args.control_url} if args.control_url else {})}
    try:
        return run_restore(configuration, args.backup, args.replay, args.until, lambda line: print(line, flush=True))
    except GamedayError as exc:
        print(f"gameday: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE


def add_parsers(sub) -> None:
    from chaoslib_ext.gameday.schedule import DEFAULT_IMAGE

    schedule = sub.add_parser(
        "schedule", help="print a Kubernetes CronJob (with its RBAC) or a crontab line that runs a suite",
        description="Print what runs SUITE's gate on a schedule. --target kubernetes (default): a ServiceAccount, a "
        "Role and RoleBinding limited to the stack's namespace, and a CronJob running `gameday gate SUITE --target "
        "kubernetes` in the cluster (never two at once; no retries: a failed gate is a finding). --target local: "
        "a crontab line for this checkout. The cron expression is checked: a bad one exits 2 naming the field.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  gameday schedule experiments/suites/gameday.yaml --cron '0 3 * * MON-FRI' | kubectl apply -f -"
        "\n  gameday schedule experiments/suites/gate.yaml --cron '@hourly' --target local >> mycrontab",
    )
    schedule.add_argument("suite", metavar="SUITE", help="suite file, relative to the repository root")
    schedule.add_argument("--cron", required=True, help="5-field cron expression or @hourly/@daily/... (UTC in a cluster)")
    schedule.add_argument("--target", choices=["local", "kubernetes"], default="kubernetes")
    schedule.add_argument("--namespace", default="app", help="the stack's namespace (default: %(default)s)")
    schedule.add_argument("--image", default=DEFAULT_IMAGE,
                          help="image with gameday, experiments/ and deploy/monitoring/ in /opt/gameday "
                               "(default: %(default)s)")
    schedule.add_argument("--name", help="name of the CronJob and its RBAC objects (default: gameday-<suite name>)")
    schedule.set_defaults(func=cmd_schedule)

    sweep = sub.add_parser(
        "sweep", help="heal every fault whose experiment is gone (after a SIGKILLed run, a crash)",
        description="List the faults in force on the target and heal them, unless an experiment is still running "
        "against it (a `chaos run` process aimed at the same control API): then its faults are left alone and "
        "listed. On Kubernetes the driver decides by expiry: chaos-made objects past their gameday/expires-at are "
        "removed, unexpired ones kept and listed (--force removes them and heals the HTTP error and provider "
        "faults too). Faults also end by their TTL; the sweep does not wait for it. Exit 0 when every orphan was "
        "healed "
        f"(or there was none), 1 when one could not be, {EXIT_UNREACHABLE} when the "
        "target cannot be reached or is outside the blast-radius allow-list.",
    )
    sweep.add_argument("--target", choices=["local", "kubernetes"], default=os.environ.get("GAMEDAY_TARGET", "local"))
    sweep.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                       help="target configuration, e.g. local_control_url=http://127.0.0.1:18000")
    sweep.add_argument("--force", action="store_true",
                       help="heal even while experiments are running (Kubernetes: unexpired objects too)")
    sweep.add_argument("--json", action="store_true", help="print the result as JSON")
    sweep.set_defaults(func=cmd_sweep)

    report = sub.add_parser(
        "report", help="write the evidence of a run directory: report.html, junit.xml, summary.md",
        description="Read the journals, timelines and SLI samples under RUN_DIR (written by `gameday run` or "
        "`gameday gate`, which also call this at the end) and write a self-contained HTML report (timeline of "
        "faults, probe samples and alert changes; SLI plots around each fault; measurements such as RTO, RPO and "
        "failover against their budgets; error budget burn), JUnit XML (one test case per experiment and per "
        "probe) and a Markdown summary. Secrets are masked. Nothing is fetched from the network.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  gameday report .gameday/runs/20260101-120000-gate --markdown >> \"$GITHUB_STEP_SUMMARY\"",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, or one experiment's directory in it")
    report.add_argument("--out", help="where to write the files (default: RUN_DIR)")
    report.add_argument("--markdown", action="store_true", help="print the Markdown summary to stdout")
    report.add_argument("--exit-code", action="store_true",
                        help="exit with the run's verdict code instead of 0 (see `gameday gate --help`)")
    report.set_defaults(func=cmd_report)


def add_restore_parser(sub) -> None:
    restore = sub.add_parser(
        "restore", help="restore the processor database from the backup store (newest valid backup by default)",
        description="Restore database ca3 from the backup agent's store: the newest backup that verifies and was "
        "taken before the disaster the agent saw (or --backup ID), plus its change log up to the disaster, with the "
        "processors' writes frozen meanwhile. A corrupt backup is refused, naming the file; choosing automatically "
        "falls back to the previous good one and says so. --replay (default) re-consumes from Kafka what the restored "
        "data lacks, up to the processors' committed offsets, with the processors' own idempotent writes.",
        epilog=f"exit codes:\n  0  restored\n  1  refused: no backup could be restored as asked\n"
        f"  {EXIT_UNREACHABLE}  the stack or the backup agent did not answer",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restore.add_argument("--backup", metavar="ID", help="a backup id from the agent's /backups (default: newest valid)")
    restore.add_argument("--replay", action=argparse.BooleanOptionalAction, default=True,
                         help="re-consume from Kafka what the restore lacks (default: --replay)")
    restore.add_argument("--until", type=float, metavar="UNIX_SECONDS",
                         help="restore changes logged before this time only (point in time)")
    restore.add_argument("--target", choices=["local"], default=os.environ.get("GAMEDAY_TARGET", "local"))
    restore.add_argument("--control-url", default=os.environ.get("GAMEDAY_CONTROL_URL"),
                         help="the local stack's control API (default: $GAMEDAY_CONTROL_URL or http://127.0.0.1:18000)")
    restore.set_defaults(func=cmd_restore)
