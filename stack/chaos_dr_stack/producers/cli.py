"""``python -m chaos_dr_stack.producers``: wiring only (settings, workers, threads, signals)."""
from __future__ import annotations

import argparse
import logging
import os
import random
import secrets
import sys
import threading
import time

from confluent_kafka import Producer

from chaos_dr_stack.processor.runtime import CachedCheck, kafka_reachable, serve
from chaos_dr_stack.producers import metrics
from chaos_dr_stack.producers.api import create_app
from chaos_dr_stack.producers.ledger import AckLedger
from chaos_dr_stack.producers.worker import GPU_TOPIC, ProducerSettings, ProducerWorker, abandon_outstanding

log = logging.getLogger("chaos_dr_stack.producers")

FLUSH_BUDGET_S = 5.0
"""On SIGTERM, how long outstanding deliveries may take in total before the process exits anyway."""
EXIT_DEADLINE_S = FLUSH_BUDGET_S + 5.0
"""After SIGTERM the process is gone by then, whatever still blocks it. Seen in CI: with the broker dead along with
a SIGKILLed runner, the HTTP server's shutdown never returned (its main thread waiting on a lock) and the process
lived on past 30 s."""


def exit_by_deadline(seconds: float) -> threading.Thread:
    """A daemon thread that ends the process ``seconds`` from now, with exit code 1, unless it has exited."""
    def watchdog() -> None:
        time.sleep(seconds)
        log.error("still running %.0f s after the stop signal: exiting now", seconds)
        logging.shutdown()
        os._exit(1)
    thread = threading.Thread(target=watchdog, name="exit-deadline", daemon=True)
    thread.start()
    return thread


def parse_args(argv: list[str] | None = None) -> tuple[ProducerSettings, argparse.Namespace]:
    defaults = ProducerSettings(bootstrap="")
    p = argparse.ArgumentParser(prog="python -m chaos_dr_stack.producers", description="CA3 event producers")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port")
    p.add_argument("--producers", type=int, default=defaults.producers)
    p.add_argument("--rate", type=float, default=defaults.rate, help="events per second per producer")
    p.add_argument("--gpus", type=int, default=defaults.gpus)
    p.add_argument("--token-every", type=int, default=defaults.token_every)
    p.add_argument("--linger-ms", type=int, default=defaults.linger_ms)
    p.add_argument("--delivery-timeout-ms", type=int, default=defaults.delivery_timeout_ms)
    p.add_argument("--seed", type=int, default=None, help="event content seed (ids stay unique per boot)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    if args.producers < 1 or args.gpus < 1 or args.rate < 0:
        p.error("--producers and --gpus must be >= 1 and --rate >= 0")
    settings = ProducerSettings(
        bootstrap=args.bootstrap,
        producers=args.producers,
        rate=args.rate,
        gpus=args.gpus,
        token_every=args.token_every,
        linger_ms=args.linger_ms,
        delivery_timeout_ms=args.delivery_timeout_ms,
    )
    return settings, args


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s producers %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    boot_id = secrets.token_hex(4)
    rng = random.Random(args.seed)
    ledger = AckLedger()
    workers = [
        ProducerWorker(f"producer-{i}-{boot_id}", settings, ledger, random.Random(rng.random()))
        for i in range(settings.producers)
    ]
    inject_producer = Producer({"bootstrap.servers": settings.bootstrap, "client.id": f"inject-{boot_id}", "linger.ms": 0})
    metrics.TARGET_RATE.set(settings.rate)

    def set_rate(rate: float) -> None:
        for worker in workers:
            worker.set_rate(rate)
        metrics.TARGET_RATE.set(rate)

    kafka_ok = CachedCheck(lambda: kafka_reachable(inject_producer, GPU_TOPIC))
    app = create_app(ledger, inject_producer, kafka_ok=kafka_ok, set_rate=set_rate)
    threads = [threading.Thread(target=w.run, name=w.producer_id, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    log.info("started %s at %.1f events/s each", [w.producer_id for w in workers], settings.rate)

    deadline_armed: list[threading.Thread] = []

    def stop(_sig: int) -> None:
        for worker in workers:
            worker.stop()
        if not deadline_armed:
            deadline_armed.append(exit_by_deadline(EXIT_DEADLINE_S))

    try:
        serve(app, args.host, args.port, on_signal=stop)
    finally:
        stop(0)
        deadline = time.monotonic() + FLUSH_BUDGET_S
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        outstanding = sum(w.flush(deadline - time.monotonic()) for w in workers)
        outstanding += inject_producer.flush(max(0.0, deadline - time.monotonic()))
        abandoned = sum(w.abandon_outstanding() for w in workers) + abandon_outstanding(inject_producer)
        log.info("stopped; %d deliveries still outstanding, %d abandoned: %s", outstanding, abandoned,
                 ledger.snapshot())
    return 0
