"""The ``gameday`` command. Wiring only: the logic lives in chaoslib_ext.gameday and stack.local."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from chaoslib_ext.gameday import orchestrate
from chaoslib_ext.gameday import verdict as verdicts
from stack.local.kraft import KAFKA_VERSION

DEFAULT_BASE_PORT = 18000
DEFAULT_STATE_DIR = ".gameday/stack"
EXIT_USAGE = 2
EXIT_STACK_FAILED = 8
EXIT_REFUSED = orchestrate.EXIT_REFUSED

EXIT_CODES_HELP = "\n".join(
    f"  {o.exit_code}  {o.name}" for o in sorted(verdicts.Outcome, key=lambda o: o.exit_code)
) + f"\n  {EXIT_USAGE}  usage error\n  {EXIT_STACK_FAILED}  the local stack failed to start or stop"


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir or os.environ.get("GAMEDAY_STATE_DIR") or DEFAULT_STATE_DIR).resolve()


def _print_endpoints(endpoints: dict) -> None:
    width = max(len(k) for k in endpoints)
    for name, url in sorted(endpoints.items()):
        print(f"  {name:<{width}}  {url}")


def cmd_stack_up(args: argparse.Namespace) -> int:
    from stack.local.api import StackStartError, start_stack

    state_dir = _state_dir(args)
    print(f"starting the local stack on ports {args.base_port}..{args.base_port + 39}, state in {state_dir} ...",
          flush=True)
    try:
        endpoints = start_stack(args.base_port, state_dir, rate=args.rate, timeout=args.timeout,
                                keep_metrics=args.keep_metrics,
                                runner_args=("--kafka-brokers", str(args.kafka_brokers)))
    except StackStartError as exc:
        print(f"gameday: the local stack did not start: {exc}", file=sys.stderr)
        return EXIT_STACK_FAILED
    print("the local stack is ready:")
    _print_endpoints(endpoints)
    if args.base_port != DEFAULT_BASE_PORT:
        print(f"\nexperiments find it with:  export GAMEDAY_CONTROL_URL={endpoints['control']}")
    return 0


def cmd_stack_down(args: argparse.Namespace) -> int:
    from stack.local.api import stop_stack

    stopped = stop_stack(_state_dir(args), timeout=args.timeout)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def cmd_stack_status(args: argparse.Namespace) -> int:
    from stack.local.api import stack_status

    status = stack_status(_state_dir(args))
    if status is None:
        print(f"no local stack is running from {_state_dir(args)}")
        return 1
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(f"ready: {status.get('ready')}   base port: {status.get('base_port')}")
        for component in status.get("components", []):
            print(f"  {component.get('name'):<14} {component.get('state', '?'):<9} "
                  f"ready={component.get('ready')}")
    return 0 if status.get("ready") else 1


def cmd_verdict(args: argparse.Namespace) -> int:
    results = [verdicts.judge_file(Path(p)) for p in args.journals]
    for result in results:
        print(verdicts.render(result))
    outcome = verdicts.overall(results)
    print(f"\nverdict: {outcome.name} (exit {outcome.exit_code})")
    return outcome.exit_code


def cmd_slo_check(args: argparse.Namespace) -> int:
    from chaoslib_ext.errors import GamedayError
    from chaoslib_ext.sli import sli_queries_have_data

    configuration = {"target": args.target, "local_control_url": args.control_url}
    try:
        result = sli_queries_have_data(services=args.services, configuration=configuration)
    except GamedayError as exc:
        print(f"gameday: {type(exc).__name__}: {exc}", file=sys.stderr)
        return verdicts.Outcome.TARGET_UNREACHABLE.exit_code
    print(f"{result['verdict']}: {result['checked']} selectors of {len(result['slos'])} SLOs "
          f"({', '.join(result['slos'])})")
    for miss in result["missing"]:
        print(f"  no series for {miss['slo']}: {miss['query']}  -> its alerts can never fire")
    return 0 if result["verdict"] == "PASS" else 1


def slo_generate(rest: list[str]) -> int:
    from chaoslib_ext.slo.__main__ import main as slo_main

    return slo_main(["generate", *rest])


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

    configuration = {"target": args.target, **_parse_vars(args.var)}
    refused = orchestrate.refuse_outside_blast_radius([(None, configuration)])
    if refused is not None:
        return refused
    try:
        result = sweep(configuration, force=args.force)
    except GamedayError as exc:
        print(f"gameday: sweep could not reach the target: {type(exc).__name__}: {exc}", file=sys.stderr)
        return verdicts.Outcome.TARGET_UNREACHABLE.exit_code
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


def _add_gameday_commands(sub) -> None:
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
        f"(or there was none), 1 when one could not be, {verdicts.Outcome.TARGET_UNREACHABLE.exit_code} when the "
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


DEFAULT_SUITE = "experiments/suites/gate.yaml"


def _parse_vars(pairs: list[str]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"gameday: --var expects key=value, got {pair!r}")
        variables[key] = value
    return variables




def cmd_run(args: argparse.Namespace) -> int:
    variables = {"target": args.target, **_parse_vars(args.var)}
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
    cli_vars = {"target": args.target, **_parse_vars(args.var)}
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


def cmd_restore(args: argparse.Namespace) -> int:
    from chaoslib_ext.errors import GamedayError
    from chaoslib_ext.gameday.restore import run_restore

    configuration = {"target": args.target, **({"local_control_url": args.control_url} if args.control_url else {})}
    try:
        return run_restore(configuration, args.backup, args.replay, args.until, lambda line: print(line, flush=True))
    except GamedayError as exc:
        print(f"gameday: {type(exc).__name__}: {exc}", file=sys.stderr)
        return verdicts.Outcome.TARGET_UNREACHABLE.exit_code


def _add_restore_parser(sub) -> None:
    restore = sub.add_parser(
        "restore", help="restore the processor database from the backup store (newest valid backup by default)",
        description="Restore database ca3 from the backup agent's store: the newest backup that verifies and was "
        "taken before the disaster the agent saw (or --backup ID), plus its change log up to the disaster, with the "
        "processors' writes frozen meanwhile. A corrupt backup is refused, naming the file; choosing automatically "
        "falls back to the previous good one and says so. --replay (default) re-consumes from Kafka what the restored "
        "data lacks, up to the processors' committed offsets, with the processors' own idempotent writes.",
        epilog=f"exit codes:\n  0  restored\n  1  refused: no backup could be restored as asked\n"
        f"  {verdicts.Outcome.TARGET_UNREACHABLE.exit_code}  the stack or the backup agent did not answer",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gameday",
        description="Chaos and disaster-recovery verification: run the local stack, judge experiment journals, "
        "check SLOs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes:\n" + EXIT_CODES_HELP + "\n\nexample:\n  gameday stack up && "
        "chaos run experiments/processor-pod-kill.yaml; gameday verdict journal.json; gameday stack down",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="start, stop or inspect the local stack (real processes, no Docker)")
    stack_sub = stack.add_subparsers(dest="stack_command", required=True)
    for name, func, help_text in (
        ("up", cmd_stack_up, "start every component and return when all are ready; prints the endpoints"),
        ("down", cmd_stack_down, "stop everything the stack started, by PID"),
        ("status", cmd_stack_status, "show which components are up; exit 1 when not ready"),
    ):
        p = stack_sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--state-dir", help=f"where logs, data and pid files go (default: $GAMEDAY_STATE_DIR or "
                                           f"{DEFAULT_STATE_DIR})")
        p.set_defaults(func=func)
        if name == "up":
            p.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT,
                           help="first of the 40 consecutive ports the stack uses (default: %(default)s)")
            p.add_argument("--rate", type=float, default=20.0,
                           help="events per second per producer (default: %(default)s)")
            p.add_argument("--timeout", type=float, default=240.0,
                           help="seconds to wait for every component to be ready (default: %(default)s; three Kafka "
                                "JVMs on two cores took 25-45 s)")
            p.add_argument("--keep-metrics", action="store_true",
                           help="keep the Prometheus series and Alertmanager state (notification log, silences) that "
                                "earlier stacks left in the state directory. Default: both start empty, because the "
                                "new replicas' counters start at 0 under the same labels and increase() over the old "
                                "samples would add the earlier stacks' restarts to this one's")
            p.add_argument("--kafka-brokers", type=int, default=3, metavar="N",
                           help="Apache Kafka %s nodes in KRaft mode, 1 to 3 (default: %%(default)s; 1 starts quicker "
                                "for work that needs no broker fault): each a combined broker and controller with its "
                                "own data directory, behind its own fault proxy port; topics are replicated min(3, N) "
                                "times with min.insync.replicas min(2, N). The jars come from `make deps` (Java 17)"
                                % KAFKA_VERSION)
        elif name == "down":
            p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a clean stop")
        else:
            p.add_argument("--json", action="store_true", help="print the full status as JSON")

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

    _add_gameday_commands(sub)

    slo = sub.add_parser("slo", help="SLOs as code: generate the rules, check the SLIs against a running stack")
    slo_sub = slo.add_subparsers(dest="slo_command", required=True)
    check = slo_sub.add_parser(
        "check", help="every served SLI must select real series (an alert on a missing label can never fire)",
        description="Query Prometheus for every selector of every served SLO in deploy/monitoring/slos.yaml, "
        "requiring each label its matchers name. Exit 0 when all have series, 1 when any is missing, "
        f"{verdicts.Outcome.TARGET_UNREACHABLE.exit_code} when the stack cannot be reached.",
    )
    check.add_argument("--target", default=os.environ.get("GAMEDAY_TARGET", "local"))
    check.add_argument("--control-url", default=os.environ.get("GAMEDAY_CONTROL_URL"),
                       help="the local stack's control API (default: $GAMEDAY_CONTROL_URL or http://127.0.0.1:18000)")
    check.add_argument("--services", nargs="+", default=None, metavar="SERVICE",
                       help="services deployed in the stack (default: processor)")
    check.set_defaults(func=cmd_slo_check)
    # Listed for --help only: main() hands `slo generate ...` to chaoslib_ext.slo's own parser before parsing.
    slo_sub.add_parser("generate", help="regenerate deploy/monitoring/rules from the spec (--check: exit 1 on drift)")

    verdict = sub.add_parser(
        "verdict", help="judge Chaos Toolkit journals; the exit code says what failed",
        description="Read journals written by `chaos run` and judge them ourselves: `chaos run` exits 0 when the "
        "baseline is not met, so its exit code cannot gate CI.",
        epilog="exit codes:\n" + EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verdict.add_argument("journals", nargs="+", metavar="JOURNAL", help="journal.json files")
    verdict.set_defaults(func=cmd_verdict)
    _add_restore_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["slo", "generate"]:
        return slo_generate(argv[2:])
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
