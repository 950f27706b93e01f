"""``gameday slo check`` and ``gameday slo generate``: SLOs as code against a running stack."""
from __future__ import annotations

import argparse
import os
import sys

from chaoslib_ext.cli.common import EXIT_UNREACHABLE


def cmd_slo_check(args: argparse.Namespace) -> int:
    from chaoslib_ext.errors import GamedayError
    from chaoslib_ext.sli import sli_queries_have_data

    configuration = {"target": args.target, "local_control_url": args.control_url}
    try:
        result = sli_queries_have_data(services=args.services, configuration=configuration)
    except GamedayError as exc:
        print(f"gameday: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(f"{result['verdict']}: {result['checked']} selectors of {len(result['slos'])} SLOs "
          f"({', '.join(result['slos'])})")
    for miss in result["missing"]:
        print(f"  no series for {miss['slo']}: {miss['query']}  -> its alerts can never fire")
    return 0 if result["verdict"] == "PASS" else 1


def slo_generate(rest: list[str]) -> int:
    from chaoslib_ext.slo.__main__ import main as slo_main

    return slo_main(["generate", *rest])


def add_parsers(sub) -> None:
    slo = sub.add_parser("slo", help="SLOs as code: generate the rules, check the SLIs against a running stack")
    slo_sub = slo.add_subparsers(dest="slo_command", required=True)
    check = slo_sub.add_parser(
        "check", help="every served SLI must select real series (an alert on a missing label can never fire)",
        description="Query Prometheus for every selector of every served SLO in deploy/monitoring/slos.yaml, "
        "requiring each label its matchers name. Exit 0 when all have series, 1 when any is missing, "
        f"{EXIT_UNREACHABLE} when the stack cannot be reached.",
    )
    check.add_argument("--target", default=os.environ.get("GAMEDAY_TARGET", "local"))
    check.add_argument("--control-url", default=os.environ.get("GAMEDAY_CONTROL_URL"),
                       help="the local stack's control API (default: $GAMEDAY_CONTROL_URL or http://127.0.0.1:18000)")
    check.add_argument("--services", nargs="+", default=None, metavar="SERVICE",
                       help="services deployed in the stack (default: processor)")
    check.set_defaults(func=cmd_slo_check)
    # Listed for --help only: main() hands `slo generate ...` to chaoslib_ext.slo's own parser before parsing.
    slo_sub.add_parser("generate", help="regenerate deploy/monitoring/rules from the spec (--check: exit 1 on drift)")
