"""``python -m chaos_dr_stack.backup``: wiring only (settings, threads, HTTP, signals)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from chaos_dr_stack.backup.agent import Agent
from chaos_dr_stack.backup.api import create_app
from chaos_dr_stack.backup.settings import THIRTY_DAYS, BackupSettings
from chaos_dr_stack.processor.runtime import serve

log = logging.getLogger("chaos_dr_stack.backup")


def parse_args(argv: list[str] | None = None) -> tuple[BackupSettings, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m chaos_dr_stack.backup",
                                description="Snapshots and a continuous change log of the processor's database.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mongo-uri", required=True)
    p.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port (committed offsets)")
    p.add_argument("--store", type=Path, required=True, help="backup store directory")
    p.add_argument("--database", default="ca3")
    p.add_argument("--group", default="processor")
    p.add_argument("--interval-s", type=float, default=30.0, help="seconds between snapshots (default 30)")
    p.add_argument("--retention-s", type=float, default=THIRTY_DAYS,
                   help="seconds a snapshot is kept (default 30 days, the seed's retention)")
    p.add_argument("--keep-min", type=int, default=3, help="snapshots kept whatever their age (default 3)")
    p.add_argument("--mongo-op-timeout-s", type=float, default=30.0,
                   help="seconds one database operation may take; a restore that stalls longer starts over once "
                        "the database answers again (default 30)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    if args.interval_s <= 0 or args.retention_s <= 0 or args.keep_min < 1 or not args.mongo_op_timeout_s > 0:
        p.error("--interval-s, --retention-s and --mongo-op-timeout-s must be > 0, --keep-min >= 1")
    return BackupSettings(mongo_uri=args.mongo_uri, bootstrap=args.bootstrap, store=args.store,
                          database=args.database, group=args.group, interval_s=args.interval_s,
                          retention_s=args.retention_s, keep_min=args.keep_min,
                          mongo_op_timeout_s=args.mongo_op_timeout_s), args


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymongo").setLevel(logging.WARNING)
    agent = Agent(settings)
    agent.start()
    log.info("backup agent on %s:%d, store %s, snapshot every %gs", args.host, args.port, settings.store,
             settings.interval_s)
    try:
        serve(create_app(agent), args.host, args.port, on_signal=lambda _sig: None)
    finally:
        agent.stop()
        log.info("stopped")
    return 0
