"""What every ``gameday`` command shares: its exit codes and the ``--var`` parser."""
from __future__ import annotations

from chaoslib_ext.gameday import orchestrate
from chaoslib_ext.gameday import verdict as verdicts

EXIT_USAGE = 2
EXIT_STACK_FAILED = 8
EXIT_REFUSED = orchestrate.EXIT_REFUSED
EXIT_UNREACHABLE = verdicts.Outcome.TARGET_UNREACHABLE.exit_code

EXIT_CODES_HELP = "\n".join(
    f"  {o.exit_code}  {o.name}" for o in sorted(verdicts.Outcome, key=lambda o: o.exit_code)
) + f"\n  {EXIT_USAGE}  usage error\n  {EXIT_STACK_FAILED}  the local stack failed to start or stop"


def parse_vars(pairs: list[str]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"gameday: --var expects key=value, got {pair!r}")
        variables[key] = value
    return variables
