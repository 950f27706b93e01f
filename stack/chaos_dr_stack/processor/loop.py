"""The consume loop: poll a batch, write it to Mongo and the dead-letter topic, then commit.

At-least-once: offsets are committed only after every write of the batch is acknowledged. A batch
whose writes fail is retried (with back-off) and never skipped, because a later commit would otherwise
move the partition past it; a retry re-sends only the chunks not yet acknowledged. A write that fails
for a data reason instead (``store.unwritable_kind``: the same event would fail on every retry) is split
in halves until the events at fault are found; those are dead-lettered as ``unwritable:<kind>`` and the
rest of the batch is stored and committed, so one poison event never holds a partition or stops a replica.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pymongo
from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from pymongo.database import Database
from pymongo.errors import PyMongoError

from chaos_dr_stack.processor import metrics, store
from chaos_dr_stack.processor.batching import DLQ_TOPIC, BatchPlan, DeadLetter, Record, drop_unwritable, plan_batch
from chaos_dr_stack.processor.isolation import Isolation, write_isolating
from chaos_dr_stack.processor.runtime import backoff_delay
from chaos_dr_stack.processor.settings import SOURCE_TOPICS, ProcessorSettings

log = logging.getLogger(__name__)


def _short(exc: BaseException) -> str:
    # pymongo appends the whole topology description to timeouts: one line is enough in a retry log.
    return str(exc).split(", Topology Description")[0][:300]


class DeadLetterError(RuntimeError):
    """The dead-letter topic did not acknowledge every dead letter of the batch."""


TIMESTAMP_TYPES = {TIMESTAMP_CREATE_TIME: "create", TIMESTAMP_LOG_APPEND_TIME: "append"}


def to_record(msg: Message) -> Record:
    ts_type, ts_ms = msg.timestamp()
    return Record(
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        value=msg.value(),
        key=msg.key(),
        timestamp=None if ts_ms is None or ts_ms < 0 else ts_ms / 1000.0,
        timestamp_type=TIMESTAMP_TYPES.get(ts_type),
    )


class _DeadLetterSend:
    """Sends a batch's dead letters so that a retry re-sends only those that failed, not those still
    in flight or already acknowledged."""

    def __init__(self, letters: list[DeadLetter]):
        self.letters = letters
        self._state = ["todo"] * len(letters)

    def attempt(self, producer: Producer, timeout: float) -> None:
        for i, letter in enumerate(self.letters):
            if self._state[i] not in ("todo", "failed"):
                continue
            self._state[i] = "pending"
            producer.produce(
                DLQ_TOPIC, value=letter.value, key=letter.key, headers=letter.headers, on_delivery=self._callback(i)
            )
        producer.flush(timeout)
        pending = self._state.count("pending") + self._state.count("failed")
        if pending:
            raise DeadLetterError(f"{pending} of {len(self.letters)} dead letters not acknowledged")

    def _callback(self, i: int) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            self._state[i] = "failed" if err is not None else "done"

        return on_delivery


class ConsumeLoop:
    """Owns the consumer; only its own thread touches it (consumer handles are not thread-safe here:
    a call from another thread blocked while the loop polled)."""

    def __init__(
        self,
        settings: ProcessorSettings,
        db: Database,
        producer: Producer,
        on_fatal: Callable[[BaseException], None],
    ):
        self._settings = settings
        self._db = db
        self._producer = producer
        self._on_fatal = on_fatal
        self._stop = threading.Event()
        self._abandon_at = float("inf")
        self._assigned: set[tuple[str, int]] = set()
        self._last_error_log = ("", 0.0)

    @property
    def deadline(self) -> float:
        """time.monotonic() by which an unfinished batch is abandoned; infinite until stop()."""
        return self._abandon_at

    def stop(self) -> None:
        if not self._stop.is_set():
            self._abandon_at = time.monotonic() + self._settings.shutdown_budget_s
            self._stop.set()

    def run(self) -> None:
        try:
            if not self._ensure_indexes():
                return
            consumer = Consumer(self._settings.consumer_config(), logger=logging.getLogger("rdkafka.consumer"))
            consumer.subscribe(
                list(SOURCE_TOPICS), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
            )
            try:
                while not self._stop.is_set():
                    self._poll_once(consumer)
            finally:
                self._close(consumer)
        except BaseException as exc:  # the loop must not die silently while the API keeps answering
            log.exception("consume loop failed")
            self._on_fatal(exc)

    def _ensure_indexes(self) -> bool:
        """Before the first poll, so a Mongo that is down at start delays consumption instead of
        crash-looping the replica. False if a shutdown came first."""
        attempt = 0
        while not self._stop.is_set():
            try:
                store.ensure_indexes(self._db)
                return True
            except PyMongoError as exc:
                delay = backoff_delay(attempt, base=0.2, cap=5.0)
                attempt += 1
                log.warning("creating indexes failed (retry in %.1fs): %s", delay, exc)
                self._stop.wait(delay)
        return False

    @staticmethod
    def _close(consumer: Consumer) -> None:
        # close() leaves the group, so the survivors get our partitions now, not after session.timeout.ms.
        try:
            consumer.close()
            log.info("consumer closed")
        except KafkaException as exc:
            log.warning("consumer close failed: %s", exc)

    def _poll_once(self, consumer: Consumer) -> None:
        messages = consumer.consume(num_messages=self._settings.batch_size, timeout=self._settings.batch_timeout_s)
        records = []
        for msg in messages:
            err = msg.error()
            if err is None:
                records.append(to_record(msg))
            elif err.code() != KafkaError._PARTITION_EOF:
                self._log_kafka_error(err)
        if not records:
            return
        started = time.perf_counter()
        plan = plan_batch(records, consumed_at=time.time())
        planned = time.perf_counter()
        if self._write(plan):
            written = time.perf_counter()
            self._commit(consumer, plan)
            log.debug(
                "batch of %d: plan %.0f ms, write %.0f ms, commit %.0f ms", len(records),
                (planned - started) * 1000, (written - planned) * 1000, (time.perf_counter() - written) * 1000,
            )

    def _write(self, plan: BatchPlan) -> bool:
        """True once everything is acknowledged; False only when a shutdown gave up on the batch. Takes the
        events the database refuses out of ``plan`` (see ``drop_unwritable``)."""
        dead_letters = _DeadLetterSend(plan.dead_letters)
        # Each acknowledged chunk is written once: re-sending it would count a false duplicate delivery, and on
        # a slow server re-sending everything is what turns a slow batch into a retry storm. The progress (and
        # the halves of a chunk being split around a poison event) survives a failed attempt.
        progress = Isolation.in_chunks(list(plan.event_docs), self._settings.write_chunk_size)
        unwritable: _DeadLetterSend | None = None
        first_written_at: dict[str, float] = {}

        def write_chunk(keys: list[str]) -> dict[str, str]:
            written_at = time.time()
            try:
                stored, refused = store.write_events(self._db, plan, written_at, keys), {}
            except store.RefusedDocuments as exc:
                stored, refused = exc.stored, exc.refused
            for key in stored:
                first_written_at[key] = written_at
            return refused

        attempt = 0
        while True:
            # Each attempt is bounded as a whole (pymongo's client-side timeout covers server
            # selection, connection and every operation), so a SIGTERM during a hung write still
            # exits within 10 s: at most one attempt, then the rest of the shutdown budget.
            budget = min(self._settings.write_attempt_timeout_s, self._abandon_at - time.monotonic())
            try:
                with pymongo.timeout(max(budget, 0.1)):
                    if plan.dead_letters:
                        dead_letters.attempt(self._producer, timeout=max(budget, 0.1))
                    write_isolating(progress, write_chunk, store.unwritable_kind)
                    if unwritable is None:
                        unwritable = self._take_out_unwritable(plan, progress)
                    if unwritable.letters:
                        unwritable.attempt(self._producer, timeout=max(budget, 0.1))
                    refused_gpus = store.write_gpu_latest(self._db, plan, time.time())
                    if refused_gpus:
                        log.error("gpu_latest: the database refused the state of %s; left as it was", refused_gpus)
                break
            except (PyMongoError, KafkaException, BufferError, DeadLetterError) as exc:
                metrics.WRITE_ERRORS.inc()
                delay = backoff_delay(attempt, base=0.2, cap=5.0)
                attempt += 1
                log.warning("batch write failed (attempt %d, retry in %.1fs): %s", attempt, delay, _short(exc))
                if not self._stop.is_set():
                    self._stop.wait(delay)  # a SIGTERM cuts the back-off short for one last attempt
                    continue
                remaining = self._abandon_at - time.monotonic()
                if remaining <= 0:
                    log.warning("shutting down: abandoning an uncommitted batch; it will be redelivered")
                    return False
                time.sleep(min(delay, remaining))
        self._record_metrics(plan, first_written_at, unwritable.letters if unwritable else [])
        return True

    @staticmethod
    def _take_out_unwritable(plan: BatchPlan, progress: Isolation) -> _DeadLetterSend:
        """Once every chunk is settled: the refused events leave the plan (so the gpu_latest update and the metrics
        skip them) and become dead letters, sent before the offsets are committed."""
        if progress.unwritable:
            log.error("the database refused %d event(s) of the batch (%d writes to find them): %s",
                      len(progress.unwritable), progress.writes, sorted(progress.unwritable.items())[:10])
        return _DeadLetterSend(drop_unwritable(plan, progress.unwritable))

    def _record_metrics(self, plan: BatchPlan, first_written_at: dict[str, float], unwritable: list[DeadLetter]) -> None:
        for topic, count in plan.processed.items():
            metrics.PROCESSED.labels(topic=topic).inc(count)
        for letter in [*plan.dead_letters, *unwritable]:
            metrics.DEAD_LETTERS.labels(reason=letter.reason).inc()
            log.info("dead letter %s: %s", letter.reason, letter.message)
        for key, written_at in first_written_at.items():
            metrics.END_TO_END.observe(max(0.0, written_at - plan.event_docs[key]["produced_at"]))

    def _commit(self, consumer: Consumer, plan: BatchPlan) -> None:
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in plan.offsets.items()]
        try:
            result = consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # Not retried: the next batch's commit supersedes it, and a lost partition's new owner
            # re-reads from the last commit; either way the writes above absorb the redelivery.
            metrics.COMMIT_ERRORS.inc()
            log.warning("offset commit failed: %s", exc)
            return
        failed = [tp for tp in result or [] if tp.error is not None]
        if failed:
            metrics.COMMIT_ERRORS.inc()
            log.warning("offset commit failed for %s", [(tp.topic, tp.partition, str(tp.error)) for tp in failed])

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned.update((tp.topic, tp.partition) for tp in partitions)
        metrics.ASSIGNED_PARTITIONS.set(len(self._assigned))
        metrics.ASSIGNMENTS.inc()
        log.info("assigned %s, now own %d", sorted((tp.topic, tp.partition) for tp in partitions), len(self._assigned))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Called inside consume(), so the previous batch is already committed.
        self._assigned.difference_update((tp.topic, tp.partition) for tp in partitions)
        metrics.ASSIGNED_PARTITIONS.set(len(self._assigned))
        log.info("revoked %s, now own %d", sorted((tp.topic, tp.partition) for tp in partitions), len(self._assigned))

    def _log_kafka_error(self, err: KafkaError) -> None:
        # A broker outage yields the same error on every poll; log it once per 10 s.
        last, at = self._last_error_log
        now = time.monotonic()
        if str(err) != last or now - at > 10:
            log.warning("kafka: %s", err)
            self._last_error_log = (str(err), now)
