"""One producer id: builds events on a schedule, sends them with an idempotent Kafka producer and
records every delivery report in the ledger."""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from chaos_dr_stack.events import Event, encode_event, gpu_event, token_event
from chaos_dr_stack.kafka_client import LEADER_DISCOVERY
from chaos_dr_stack.producers import metrics
from chaos_dr_stack.producers.ledger import AckLedger
from chaos_dr_stack.producers.pacing import Pacer

log = logging.getLogger(__name__)

GPU_TOPIC = "gpu-events"
TOKEN_TOPIC = "token-events"
MODELS = ("llama-3-8b", "mistral-7b", "qwen-2-7b")


@dataclass(frozen=True)
class ProducerSettings:
    bootstrap: str
    producers: int = 2
    rate: float = 20.0
    """Events per second per producer: modest, so two cores run the rest of the stack and its faults beside it."""
    gpus: int = 4
    token_every: int = 5
    """Every n-th event is a token event, the rest GPU events."""
    linger_ms: int = 5
    """Small, so batching adds at most this to the end-to-end latency."""
    delivery_timeout_ms: int = 30000
    """How long librdkafka retries one event before reporting it failed: short enough that a chaos
    experiment sees failures, long enough to ride out a broker restart."""
    request_timeout_ms: int = 5000
    """How long a broker may hold an acks=all write before answering REQUEST_TIMED_OUT, after which the producer
    retries, against the leader its latest metadata names (see ``LEADER_DISCOVERY``). librdkafka's 30 s default
    would leave a write with a broker cut from the rest of the cluster for the whole of the event's delivery
    timeout."""
    socket_timeout_ms: int = 7000
    """How long any request may go unanswered before librdkafka drops the connection, and so asks another broker
    for the partition leaders. Above ``request_timeout_ms``, so a write a healthy leader holds for its acks is not
    cut short. It is what moves the writes off a broker cut from the rest of the cluster while clients still reach
    it: that broker holds every acks=all write for the full request timeout, one request at a time per connection,
    so a metadata request waits behind up to five of them; and librdkafka asks the broker it sent to last, which is
    that one, for metadata (docs/benchmarks.md, "The wedge, explained and fixed")."""

    def producer_config(self, client_id: str) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap,
            "client.id": client_id,
            "enable.idempotence": True,
            "linger.ms": self.linger_ms,
            "delivery.timeout.ms": self.delivery_timeout_ms,
            "request.timeout.ms": self.request_timeout_ms,
            "socket.timeout.ms": self.socket_timeout_ms,
            # A connection to every broker, so another one is up to answer when the connection in use is dropped.
            # With sparse connections a producer had only the cut broker's, and asked it again as soon as it
            # reconnected.
            "enable.sparse.connections": False,
            **LEADER_DISCOVERY,
        }


class EventSource:
    """The event content of one producer: GPUs round-robin with a bounded random walk. Pure given ``rng``."""

    def __init__(self, producer_id: str, gpus: int, token_every: int, rng: random.Random):
        self.producer_id = producer_id
        self._gpus = [f"gpu-{i}" for i in range(gpus)]
        self._token_every = token_every
        self._rng = rng
        self._util = {gpu: rng.uniform(10, 90) for gpu in self._gpus}
        self._gpu_turn = 0

    def next(self, seq: int, now: float) -> tuple[str, Event]:
        if self._token_every > 0 and seq % self._token_every == 0:
            tokens_in = self._rng.randint(10, 4000)
            event = token_event(
                self.producer_id, seq, self._rng.choice(MODELS), produced_at=now,
                tokens_in=tokens_in, tokens_out=self._rng.randint(1, 1000),
            )
            return TOKEN_TOPIC, event
        gpu = self._gpus[self._gpu_turn % len(self._gpus)]
        self._gpu_turn += 1
        util = min(100.0, max(0.0, self._util[gpu] + self._rng.uniform(-5, 5)))
        self._util[gpu] = util
        event = gpu_event(
            self.producer_id, seq, gpu, produced_at=now,
            utilization_pct=round(util, 2),
            memory_used_mb=round(80000 * util / 100, 1),
            memory_total_mb=81920.0,
            temperature_c=round(35 + util * 0.5, 1),
            power_w=round(70 + util * 6, 1),
        )
        return GPU_TOPIC, event


class ProducerWorker:
    def __init__(self, producer_id: str, settings: ProducerSettings, ledger: AckLedger, rng: random.Random):
        self.producer_id = producer_id
        self._settings = settings
        self._ledger = ledger
        self._source = EventSource(producer_id, settings.gpus, settings.token_every, rng)
        self._fatal: KafkaError | None = None
        self._producer = self._new_producer()
        self._last_failure_log = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pacer = Pacer(settings.rate, time.monotonic())
        self._seq = 0
        ledger.register(producer_id, time.time())

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self._pacer.set_rate(rate, time.monotonic())

    def stop(self) -> None:
        self._stop.set()

    def flush(self, timeout: float) -> int:
        """Wait for outstanding delivery reports. Returns how many are still outstanding."""
        try:
            return self._producer.flush(max(0.0, timeout))
        except Exception as exc:  # a fatal producer raises from flush; shutdown goes on regardless
            log.warning("%s: flush failed: %s", self.producer_id, exc)
            return len(self._producer)

    def abandon_outstanding(self) -> int:
        return abandon_outstanding(self._producer)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._round()
            except Exception:  # a dead thread would leave /health green and the rate at zero
                log.exception("%s: send round failed", self.producer_id)
                self._stop.wait(0.5)

    def _round(self) -> None:
        with self._lock:
            due = self._pacer.due(time.monotonic())
        for _ in range(due):
            if self._stop.is_set() or not self._send_next():
                break
            with self._lock:
                self._pacer.sent()
        self._poll()
        self._check_health()
        with self._lock:
            delay = self._pacer.delay(time.monotonic())
        # Capped so a rate change or a stop is noticed within 0.1 s.
        self._stop.wait(min(delay, 0.1))

    def _new_producer(self) -> Producer:
        config = {**self._settings.producer_config(self.producer_id), "error_cb": self._on_error}
        return Producer(config, logger=logging.getLogger("rdkafka.producer"))

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err

    def _poll(self) -> None:
        try:
            self._producer.poll(0)
        except Exception as exc:  # confluent-kafka raises a fatal error from the poll that reports it
            log.warning("%s: poll failed: %s", self.producer_id, exc)
            self._fatal = self._fatal or KafkaError(KafkaError._FATAL, str(exc))

    def _check_health(self) -> None:
        """Replace the Kafka producer after a fatal error, which leaves an idempotent producer unable to send
        anything again (librdkafka raises one when the broker fences the producer id, or when the sequence it
        keeps can no longer be reconciled). Its outstanding events are purged and so reported failed, which is
        the truth: the broker never acknowledged them."""
        if self._fatal is None:
            return
        reason = f"fatal error {self._fatal}"
        stuck, self._producer, self._fatal = self._producer, self._new_producer(), None
        outstanding = len(stuck)
        try:
            stuck.purge(in_queue=True, in_flight=True)
            stuck.flush(2.0)  # serves the purged events' delivery reports, so the ledger counts them failed
        except Exception as exc:
            log.warning("%s: purging the old producer failed: %s", self.producer_id, exc)
        metrics.PRODUCER_REPLACED.inc()
        log.warning("%s: %s; replaced the producer (%d events purged)", self.producer_id, reason, outstanding)

    def _send_next(self) -> bool:
        """False when the local queue is full: the event keeps its seq and is retried next round."""
        seq = self._seq + 1
        topic, event = self._source.next(seq, time.time())
        try:
            self._producer.produce(
                topic, key=self.producer_id.encode(), value=encode_event(event), on_delivery=self._on_delivery(seq, topic)
            )
        except BufferError:
            self._producer.poll(0.05)
            return False
        except KafkaException as exc:  # fatal: the producer is unusable until replaced
            self._fatal = self._fatal or exc.args[0]
            return False
        self._seq = seq
        self._ledger.sent(self.producer_id)
        return True

    def _on_delivery(self, seq: int, topic: str):
        def callback(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                self._ledger.acked(self.producer_id, seq)
                metrics.PRODUCED.labels(producer_id=self.producer_id, topic=topic).inc()
                return
            self._ledger.failed(self.producer_id, seq)
            metrics.PRODUCE_ERRORS.inc()
            now = time.monotonic()
            if now - self._last_failure_log > 5:  # an outage fails every event: log a sample
                self._last_failure_log = now
                log.warning("%s seq %d to %s failed: %s", self.producer_id, seq, topic, err)

        return callback


def abandon_outstanding(producer) -> int:
    """Purge what is still queued or in flight, so the process can exit now.

    Without this, destroying a librdkafka producer waits for every outstanding message up to
    ``delivery.timeout.ms`` (30 s): a producer whose broker died with it (a SIGKILLed runner takes both down)
    would outlive its SIGTERM by that long. The purged events are reported failed, so the ledger stays true.
    """
    try:
        outstanding = len(producer)
        if outstanding:
            producer.purge(in_queue=True, in_flight=True)
            producer.flush(0)
        return outstanding
    except Exception as exc:  # a fatal producer raises here too; exiting matters more than the count
        log.warning("abandoning outstanding deliveries failed: %s", exc)
        return 0
