"""``python -m chaos_dr_stack.processor``: wiring only (settings, clients, threads, signals)."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from confluent_kafka import Producer

from chaos_dr_stack.processor import metrics, store
from chaos_dr_stack.processor.api import create_app
from chaos_dr_stack.processor.faults import TOKEN_ENV
from chaos_dr_stack.processor.loop import ConsumeLoop
from chaos_dr_stack.processor.runtime import CachedCheck, kafka_reachable, serve
from chaos_dr_stack.processor.settings import GROUP_PROTOCOLS, SOURCE_TOPICS, ProcessorSettings

log = logging.getLogger("chaos_dr_stack.processor")


def parse_args(argv: list[str] | None = None) -> tuple[ProcessorSettings, argparse.Namespace]:
    defaults = ProcessorSettings(name="", bootstrap="", mongo_uri="")
    p = argparse.ArgumentParser(prog="python -m chaos_dr_stack.processor", description="CA3 event processor")
    p.add_argument("--name", default="processor-0")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port")
    p.add_argument("--mongo-uri", required=True)
    p.add_argument("--database", default=defaults.database)
    p.add_argument("--group", default=defaults.group)
    p.add_argument("--group-protocol", default=defaults.group_protocol, choices=GROUP_PROTOCOLS,
                   help="Kafka's consumer group protocol (default: %(default)s). With 'consumer' (KIP-848) the broker "
                        "assigns the partitions and owns the session and heartbeat: the three flags below are then "
                        "refused")
    p.add_argument("--session-timeout-ms", type=int, default=None,
                   help=f"classic protocol only (default: {defaults.session_timeout_ms})")
    p.add_argument("--heartbeat-interval-ms", type=int, default=None,
                   help=f"classic protocol only (default: {defaults.heartbeat_interval_ms})")
    p.add_argument("--fetch-wait-max-ms", type=int, default=defaults.fetch_wait_max_ms)
    p.add_argument("--socket-timeout-ms", type=int, default=defaults.socket_timeout_ms,
                   help="how long an unanswered Kafka request waits before the connection is rebuilt")
    p.add_argument("--max-poll-interval-ms", type=int, default=defaults.max_poll_interval_ms)
    p.add_argument("--auto-offset-reset", default=defaults.auto_offset_reset, choices=["earliest", "latest"])
    p.add_argument("--assignment-strategy", default=None, choices=["cooperative-sticky", "range", "roundrobin"],
                   help=f"classic protocol only (default: {defaults.assignment_strategy})")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--batch-timeout-s", type=float, default=defaults.batch_timeout_s)
    p.add_argument("--write-chunk-size", type=int, default=defaults.write_chunk_size,
                   help="events per insert; a timed-out attempt re-sends only the chunks not yet acknowledged")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    for flag, value in (("--batch-size", args.batch_size), ("--write-chunk-size", args.write_chunk_size)):
        if value < 1:
            p.error(f"{flag} must be at least 1, got {value}")
    classic_only = {"--session-timeout-ms": args.session_timeout_ms,
                    "--heartbeat-interval-ms": args.heartbeat_interval_ms,
                    "--assignment-strategy": args.assignment_strategy}
    if args.group_protocol == "consumer":
        given = [flag for flag, value in classic_only.items() if value is not None]
        if given:
            p.error(f"{', '.join(given)} cannot be used with --group-protocol consumer: under that protocol the "
                    "broker owns the session, the heartbeat and the assignment (group.consumer.* settings)")
    settings = ProcessorSettings(
        name=args.name,
        bootstrap=args.bootstrap,
        mongo_uri=args.mongo_uri,
        database=args.database,
        group=args.group,
        group_protocol=args.group_protocol,
        session_timeout_ms=_given(args.session_timeout_ms, defaults.session_timeout_ms),
        heartbeat_interval_ms=_given(args.heartbeat_interval_ms, defaults.heartbeat_interval_ms),
        fetch_wait_max_ms=args.fetch_wait_max_ms,
        socket_timeout_ms=args.socket_timeout_ms,
        max_poll_interval_ms=args.max_poll_interval_ms,
        auto_offset_reset=args.auto_offset_reset,
        assignment_strategy=_given(args.assignment_strategy, defaults.assignment_strategy),
        batch_size=args.batch_size,
        batch_timeout_s=args.batch_timeout_s,
        write_chunk_size=args.write_chunk_size,
    )
    return settings, args


def _given(value, default):
    return default if value is None else value


def consumer_info(settings: ProcessorSettings) -> dict[str, str]:
    """What ``app_consumer_info`` reports: under the consumer protocol the session is the broker's, not ours."""
    info = {"group_protocol": settings.group_protocol, "socket_timeout_ms": str(settings.socket_timeout_ms)}
    if settings.group_protocol == "classic":
        info.update(session_timeout_ms=str(settings.session_timeout_ms),
                    heartbeat_interval_ms=str(settings.heartbeat_interval_ms),
                    assignment_strategy=settings.assignment_strategy)
    return info


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s {settings.name} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    writer = store.connect(
        settings.mongo_uri, timeout_ms=settings.mongo_timeout_ms, socket_timeout_ms=5000, app_name=settings.name
    )
    # The API's own client: short timeouts, so /health and /gpu/info answer quickly during an outage.
    health_ms = int(settings.health_timeout_s * 1000)
    reader = store.connect(settings.mongo_uri, timeout_ms=health_ms, socket_timeout_ms=1000, app_name=f"{settings.name}-api")
    producer = Producer(settings.producer_config(), logger=logging.getLogger("rdkafka.producer"))

    exit_code = 0

    def on_fatal(_exc: BaseException) -> None:
        nonlocal exit_code
        exit_code = 1
        os.kill(os.getpid(), signal.SIGTERM)  # serve() stops uvicorn from the main thread

    metrics.CONSUMER.info(consumer_info(settings))
    loop = ConsumeLoop(settings, store.database(writer, settings.database), producer, on_fatal)
    thread = threading.Thread(target=loop.run, name="consume-loop", daemon=True)

    # Kafka only informs /health (it is not readiness): never make a caller wait for it. A partition that holds
    # connections makes every check last its whole timeout, which would put /health over SLO-2's 200 ms.
    kafka_ok = CachedCheck(lambda: kafka_reachable(producer, SOURCE_TOPICS[0], timeout=settings.health_timeout_s),
                           wait=False)
    mongo_ok = CachedCheck(lambda: bool(reader.admin.command("ping").get("ok")))
    # The fault hook's secret comes only from the environment (never argv, never logged); without it the hook is off.
    fault_token = os.environ.pop(TOKEN_ENV, None) or None
    app = create_app(reader[settings.database], kafka_ok=kafka_ok, mongo_ok=mongo_ok, fault_token=fault_token)

    thread.start()
    try:
        serve(app, args.host, args.port, on_signal=lambda _sig: loop.stop())
    finally:
        loop.stop()
        # Measured from the signal, not from here: uvicorn's own shutdown already used part of the 10 s.
        thread.join(timeout=max(0.5, loop.deadline + 1.5 - time.monotonic()))
        remaining = producer.flush(1.0)
        if thread.is_alive():
            log.error("consume loop did not stop in time; exiting without a clean group leave")
            logging.shutdown()
            os._exit(exit_code)
        writer.close()
        reader.close()
        log.info("stopped (exit %d, %d dead letters unflushed)", exit_code, remaining)
    return exit_code
