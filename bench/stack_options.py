"""The stack options every benchmark that starts its own local stack shares, so each measures the stack
`gameday stack up` starts unless told otherwise."""
from __future__ import annotations

import argparse

DEFAULT_KAFKA_BROKERS = 3


def add_kafka_brokers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kafka-brokers", type=int, default=DEFAULT_KAFKA_BROKERS, metavar="N",
                        help="Kafka nodes of the stack (default %(default)s, as `gameday stack up`; 1 for the "
                             "one-node figures)")


def runner_args(args: argparse.Namespace) -> tuple[str, ...]:
    """The runner flags for LocalStack(runner_args=...)."""
    return ("--kafka-brokers", str(args.kafka_brokers))
