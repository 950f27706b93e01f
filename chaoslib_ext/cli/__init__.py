"""The ``gameday`` command. Wiring only: each group of commands is a module here, and the work lives in
chaoslib_ext.gameday and chaos_dr_stack.local."""
from __future__ import annotations

import argparse
import sys

from chaoslib_ext.cli import ops_commands, run_commands, slo_commands, stack_commands
from chaoslib_ext.cli.common import EXIT_CODES_HELP

__all__ = ["build_parser", "main"]


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

    stack_commands.add_parsers(sub)
    run_commands.add_parsers(sub)
    ops_commands.add_parsers(sub)
    slo_commands.add_parsers(sub)
    run_commands.add_verdict_parser(sub)
    ops_commands.add_restore_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["slo", "generate"]:
        return slo_commands.slo_generate(argv[2:])
    args = build_parser().parse_args(argv)
    return int(args.func(args))

