"""``gameday stack up|down|status``: the local stack of real processes (no Docker)."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

from chaoslib_ext.cli.common import EXIT_STACK_FAILED

DEFAULT_BASE_PORT = 18000
DEFAULT_STATE_DIR = ".gameday/stack"


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir or os.environ.get("GAMEDAY_STATE_DIR") or DEFAULT_STATE_DIR).resolve()


def _print_endpoints(endpoints: dict) -> None:
    width = max(len(k) for k in endpoints)
    for name, url in sorted(endpoints.items()):
        print(f"  {name:<{width}}  {url}")


LOCAL_EXTRA_MODULES = ("chaos_dr_stack", "confluent_kafka", "fastapi", "uvicorn", "starlette_exporter",
                       "prometheus_client", "secantus", "openai")
"""The reference stack (the ``chaos-dr-verify-stack`` distribution in stack/ of the repository) and what its
services import: the ``local`` extra."""
INSTALL_LOCAL_EXTRA = "from a checkout, pip install -e ./stack -e '.[local]'"


def missing_local_extra() -> list[str]:
    """The modules of the ``local`` extra that are not installed; empty when the stack can run here."""
    return [name for name in LOCAL_EXTRA_MODULES if importlib.util.find_spec(name) is None]


def _kafka_version() -> str:
    try:
        from chaos_dr_stack.local.kraft import KAFKA_VERSION
    except ImportError:
        return "(the version the local extra pins)"
    return KAFKA_VERSION


def _local_stack_api():
    """The reference stack's client API, or None (having said which extra is missing)."""
    missing = missing_local_extra()
    if missing:
        print(f"gameday: the local stack needs the local extra, which is not installed (no {', '.join(missing)}): "
              f"{INSTALL_LOCAL_EXTRA}", file=sys.stderr)
        return None
    from chaos_dr_stack.local import api

    return api


def cmd_stack_up(args: argparse.Namespace) -> int:
    api = _local_stack_api()
    if api is None:
        return EXIT_STACK_FAILED
    state_dir = _state_dir(args)
    print(f"starting the local stack on ports {args.base_port}..{args.base_port + 39}, state in {state_dir} ...",
          flush=True)
    try:
        endpoints = api.start_stack(args.base_port, state_dir, rate=args.rate, timeout=args.timeout,
                                keep_metrics=args.keep_metrics,
                                runner_args=("--kafka-brokers", str(args.kafka_brokers)))
    except api.StackStartError as exc:
        print(f"gameday: the local stack did not start: {exc}", file=sys.stderr)
        return EXIT_STACK_FAILED
    print("the local stack is ready:")
    _print_endpoints(endpoints)
    if args.base_port != DEFAULT_BASE_PORT:
        print(f"\nexperiments find it with:  export GAMEDAY_CONTROL_URL={endpoints['control']}")
    return 0


def cmd_stack_down(args: argparse.Namespace) -> int:
    api = _local_stack_api()
    if api is None:
        return EXIT_STACK_FAILED
    stopped = api.stop_stack(_state_dir(args), timeout=args.timeout)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def cmd_stack_status(args: argparse.Namespace) -> int:
    api = _local_stack_api()
    if api is None:
        return EXIT_STACK_FAILED
    status = api.stack_status(_state_dir(args))
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


def add_parsers(sub) -> None:
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
                                % _kafka_version())
        elif name == "down":
            p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a clean stop")
        else:
            p.add_argument("--json", action="store_true", help="print the full status as JSON")
