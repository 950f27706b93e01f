"""``python -m chaos_dr_stack.providers``: the provider simulator (docs/local-stack-contract.md, "Provider simulator")."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from prometheus_client import disable_created_metrics

from chaos_dr_stack.providers.app import TOKEN_ENV, create_app
from chaos_dr_stack.providers.catalogue import PROVIDERS
from chaos_dr_stack.service_runtime import serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m chaos_dr_stack.providers",
        description=f"Stand-in for the external providers ({', '.join(PROVIDERS)}), each under /<provider>/, "
        f"with a fault API under /_faults (token in ${TOKEN_ENV}, header X-Gameday-Token).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    disable_created_metrics()  # *_created series: twice the scrape for nothing the SLOs read
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s provider-simulator %(levelname)s %(name)s: %(message)s")
    # The token comes only from the environment (never argv, never logged); without it the fault API is off.
    token = os.environ.pop(TOKEN_ENV, None) or None
    if token is None:
        logging.getLogger("chaos_dr_stack.providers").warning("%s not set: the fault API answers 403", TOKEN_ENV)
    serve(create_app(token), args.host, args.port, on_signal=lambda _sig: None)
    return 0
