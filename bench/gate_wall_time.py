"""Wall time of the CI resilience gate: `gameday gate experiments/suites/gate.yaml` against a fresh local stack.

    .venv/bin/python bench/gate_wall_time.py [--suite experiments/suites/gate.yaml] [--stack-timeout 180]

Starts its own local stack on free ports (timed separately: CI pays it once, and it is not the gate), runs the
gate through the real CLI exactly as CI would, and prints the stack start, the gate's wall time, each
experiment's seconds from the verdict table, and the gate's exit code. The goal is under 5 minutes on 2 cores.
Figures go into docs/benchmarks.md, with the machine's load at the time (os.getloadavg), since the machine is
shared.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chaos_dr_stack.local.api import LocalStack

REPO = Path(__file__).resolve().parents[1]
GAMEDAY = Path(sys.executable).with_name("gameday")
ROW = re.compile(r"^(?P<outcome>[A-Z_]+)\s+(?P<seconds>\d+\.\d)\s+(?P<experiment>\S+\.yaml)$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="experiments/suites/gate.yaml")
    parser.add_argument("--runs", type=int, default=1,
                        help="gates in a row on the same stack (from the second on, the alert drills' baselines "
                             "fail while the first gate's drill alert is still active: measure with 1)")
    parser.add_argument("--stack-timeout", type=float, default=180.0,
                        help="seconds the stack may take to be ready (a loaded shared machine needs more than 60)")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        with LocalStack(state_dir=Path(tmp) / "stack", timeout=args.stack_timeout) as stack:
            stack_seconds = time.monotonic() - started
            print(f"stack ready in {stack_seconds:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
            for run in range(1, args.runs + 1):
                load_before = os.getloadavg()[0]
                started = time.monotonic()
                gate = subprocess.run(
                    [str(GAMEDAY), "gate", args.suite, "--var", f"local_control_url={stack.control_url}",
                     "--run-dir", f"{tmp}/runs-{run}", "--quiet"],
                    cwd=REPO, capture_output=True, text=True,
                )
                seconds = time.monotonic() - started
                rows = [m.groupdict() for m in map(ROW.match, gate.stdout.splitlines()) if m]
                result = {"run": run, "gate_seconds": round(seconds, 1), "exit_code": gate.returncode,
                          "experiments": {r["experiment"]: {"outcome": r["outcome"], "seconds": float(r["seconds"])}
                                          for r in rows},
                          "load_1m_before": round(load_before, 2), "load_1m_after": round(os.getloadavg()[0], 2)}
                results.append(result)
                print(f"gate {run}: {seconds:.1f} s, exit {gate.returncode}", flush=True)
                if gate.returncode != 0:
                    print(gate.stdout[-3000:] + gate.stderr[-2000:], file=sys.stderr)
    print(json.dumps({"suite": args.suite, "cores": os.cpu_count(), "stack_start_seconds": round(stack_seconds, 1),
                      "gates": results}, indent=2))


if __name__ == "__main__":
    main()
