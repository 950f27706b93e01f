"""``python -m chaoslib_ext.slo generate [--spec S] [--out DIR] [--tests-out DIR] [--check] [--promtool P]``

Exit codes: 0 written (or, with --check, up to date); 1 the committed files drift from the spec; 2 invalid spec.
Wiring only: the work is done by chaoslib_ext.slo.spec, .rules, .rule_tests and .output.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaoslib_ext.slo import output, promtool, spec

EXIT_OK, EXIT_DRIFT, EXIT_INVALID = 0, 1, 2
REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING = REPO_ROOT / "deploy" / "monitoring"
DIFF_LINES_SHOWN = 40


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chaoslib_ext.slo", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="generate Prometheus rules and promtool tests from the SLO spec",
                                   epilog="exit codes: 0 ok, 1 drift (--check), 2 invalid spec")
    generate.add_argument("--spec", type=Path, default=MONITORING / "slos.yaml", help="SLO spec (default: %(default)s)")
    generate.add_argument("--out", type=Path, default=MONITORING / "rules", help="rules directory (default: %(default)s)")
    generate.add_argument("--tests-out", type=Path, default=MONITORING / "rules-tests",
                          help="promtool tests directory (default: %(default)s)")
    generate.add_argument("--check", action="store_true", help="write nothing; exit 1 if the files on disk differ")
    generate.add_argument("--promtool", help="promtool binary (default: $PROMTOOL, then PATH)")
    return parser


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    layout = output.Layout(rules_dir=args.out, tests_dir=args.tests_out, spec_name=args.spec.name)
    try:
        catalog = spec.load(args.spec)
        files = output.render(catalog, layout)
        try:
            binary = promtool.find(args.promtool)
        except promtool.PromtoolMissing as exc:
            print(f"warning: {exc}; PromQL was not validated", file=sys.stderr)
        else:
            output.validate(catalog, files, layout, binary)
    except spec.SpecError as exc:
        print(f"invalid SLO spec {_shown(args.spec)}:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return EXIT_INVALID

    if args.check:
        drifts = output.drift(files, layout)
        if not drifts:
            print(f"{len(files)} generated files match {_shown(args.spec)}")
            return EXIT_OK
        print(f"{len(drifts)} generated files drift from {_shown(args.spec)}; run: python -m chaoslib_ext.slo generate",
              file=sys.stderr)
        for item in drifts:
            print(f"  {item.summary()}", file=sys.stderr)
        diff = [line for item in drifts for line in item.diff]
        for line in diff[:DIFF_LINES_SHOWN]:
            print(f"    {line}", file=sys.stderr)
        if len(diff) > DIFF_LINES_SHOWN:
            print(f"    ... {len(diff) - DIFF_LINES_SHOWN} more diff lines", file=sys.stderr)
        return EXIT_DRIFT

    written = output.write_all(files, layout)
    print(f"wrote {len(written)} files from {_shown(args.spec)}:")
    for path in written:
        print(f"  {_shown(path)}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
