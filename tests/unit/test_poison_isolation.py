"""A write that fails for a data reason is split in halves until the events at fault are found; those are
dead-lettered, the rest stored, and a replica never exits on it. No database, no sleeping."""
from __future__ import annotations

import pytest
from bson.errors import InvalidDocument
from hypothesis import given, settings
from hypothesis import strategies as st
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

from fake_kafka import AckingProducer
from chaos_dr_stack.events import encode_event, gpu_event, token_event
from chaos_dr_stack.processor import loop as loop_module
from chaos_dr_stack.processor import metrics, store
from chaos_dr_stack.processor.batching import Record, drop_unwritable, plan_batch
from chaos_dr_stack.processor.isolation import Isolation, write_isolating
from chaos_dr_stack.processor.loop import ConsumeLoop
from chaos_dr_stack.processor.settings import ProcessorSettings


class FakeWrites:
    """A database that refuses every group holding a poison key, the way bson does: before anything is stored."""

    def __init__(self, poison: dict[str, BaseException], outages: list[BaseException] | None = None):
        self.poison = poison
        self.outages = outages or []
        self.calls: list[list[str]] = []
        self.stored: list[str] = []

    def __call__(self, keys: list[str]) -> dict[str, str]:
        self.calls.append(list(keys))
        if self.outages:
            raise self.outages.pop(0)
        for key in keys:
            if key in self.poison:
                raise self.poison[key]
        self.stored.extend(keys)
        return {}


KEYS = [f"k{i}" for i in range(100)]


def test_one_poison_key_in_a_chunk_is_found_in_log_n_writes_and_the_rest_stored_once():
    writes = FakeWrites({"k37": OverflowError("MongoDB can only handle up to 8-byte ints")})
    progress = Isolation.in_chunks(KEYS, 100)
    write_isolating(progress, writes, store.unwritable_kind)
    assert progress.done and progress.unwritable == {"k37": "int_overflow"}
    assert sorted(writes.stored) == sorted(set(KEYS) - {"k37"}) and len(writes.stored) == 99, "each stored once"
    assert progress.writes == len(writes.calls) <= 2 * 7 + 1


@settings(max_examples=300, deadline=None)
@given(st.sets(st.sampled_from(KEYS)), st.integers(1, 100))
def test_any_set_of_poison_keys_is_found_exactly_and_everything_else_is_stored_once(poison, chunk):
    writes = FakeWrites({k: UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed") for k in poison})
    progress = Isolation.in_chunks(KEYS, chunk)
    write_isolating(progress, writes, store.unwritable_kind)
    assert progress.unwritable == {k: "bad_string" for k in poison}
    assert sorted(writes.stored) == sorted(set(KEYS) - poison)
    assert all(len(call) <= chunk for call in writes.calls)


def test_an_outage_during_the_split_propagates_and_the_retry_resends_only_what_was_not_acknowledged():
    writes = FakeWrites({"k3": OverflowError("8-byte ints")})
    progress = Isolation.in_chunks(KEYS[:8], 8)
    write_isolating(progress, writes, store.unwritable_kind)  # the reference run
    reference = writes.calls

    writes = FakeWrites({"k3": OverflowError("8-byte ints")})
    progress = Isolation.in_chunks(KEYS[:8], 8)
    original = writes.__call__

    def flaky(keys):  # the connection drops on the fourth write ([k2, k3]): k0-k1 are stored by then
        if len(writes.calls) == 3 and not getattr(flaky, "failed", False):
            flaky.failed = True
            raise ConnectionFailure("connection reset")
        return original(keys)

    with pytest.raises(ConnectionFailure):
        write_isolating(progress, flaky, store.unwritable_kind)
    assert progress.pending[0] == ["k2", "k3"] and writes.stored == ["k0", "k1"]
    write_isolating(progress, flaky, store.unwritable_kind)
    assert writes.calls == reference and writes.stored == ["k0", "k1", "k2", "k4", "k5", "k6", "k7"]
    assert progress.unwritable == {"k3": "int_overflow"}


def test_per_document_refusals_are_taken_as_they_are_without_a_split():
    calls = []

    def write(keys):
        calls.append(keys)
        return {"k1": "validation"}

    progress = Isolation.in_chunks(KEYS[:4], 4)
    write_isolating(progress, write, store.unwritable_kind)
    assert (calls, progress.unwritable) == ([KEYS[:4]], {"k1": "validation"})


def test_an_unknown_error_is_not_a_data_error():
    progress = Isolation.in_chunks(KEYS[:4], 4)
    with pytest.raises(RuntimeError):
        write_isolating(progress, FakeWrites({"k1": RuntimeError("bug")}), store.unwritable_kind)
    assert progress.pending == [KEYS[:4]] and progress.unwritable == {}


@pytest.mark.parametrize(("exc", "kind"), [
    (OverflowError("MongoDB can only handle up to 8-byte ints"), "int_overflow"),
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), "bad_string"),
    (DocumentTooLarge("BSON document too large"), "too_large"),
    (InvalidDocument("cannot encode object"), "invalid_document"),
    (OperationFailure("bad", code=2), "bad_value"),
    (OperationFailure("type", code=14), "type_mismatch"),
    (OperationFailure("Document failed validation", code=121), "validation"),
    (OperationFailure("too large", code=10334), "too_large"),
    (OperationFailure("too large after update", code=17419), "too_large"),
    (OperationFailure("interrupted at shutdown", code=11600), None),
    (OperationFailure("no code"), None),
    (ExecutionTimeout("operation exceeded time limit", code=50), None),
    (WTimeoutError("waiting for replication timed out", code=64), None),
    (BulkWriteError({"writeErrors": [{"index": 0, "code": 121}]}), None),
    (NotPrimaryError("not primary"), None),
    (AutoReconnect("connection closed"), None),
    (NetworkTimeout("timed out"), None),
    (ServerSelectionTimeoutError("no servers"), None),
    (ConnectionFailure("refused"), None),
    (ValueError("something else"), None),
])
def test_data_errors_are_told_from_outages(exc, kind):
    assert store.unwritable_kind(exc) == kind
    assert kind is None or kind in store.UNWRITABLE_KINDS


def gpu(seq: int, gpu_id: str, produced_at: float) -> bytes:
    return encode_event(gpu_event("p-1", seq, gpu_id, produced_at=produced_at, utilization_pct=1.0,
                                  memory_used_mb=1.0, memory_total_mb=2.0, temperature_c=3.0, power_w=4.0))


def token(seq: int) -> bytes:
    return encode_event(token_event("p-1", seq, "m", produced_at=100.0 + seq, tokens_in=1, tokens_out=2))


def test_dropping_an_unwritable_event_recomputes_the_gpu_state_without_it_and_dead_letters_each_delivery():
    records = [Record("gpu-events", 0, 10, gpu(1, "gpu-0", 10.0)), Record("gpu-events", 0, 11, gpu(2, "gpu-0", 20.0)),
               Record("gpu-events", 1, 5, gpu(2, "gpu-0", 20.0)), Record("token-events", 0, 3, token(3))]
    plan = plan_batch(records, consumed_at=1.0)
    assert plan.gpu_latest["gpu-0"].seq == 2

    letters = drop_unwritable(plan, {"p-1:2": "int_overflow"})
    assert plan.gpu_latest["gpu-0"].seq == 1, "the newest state left is the one before the refused event"
    assert set(plan.event_docs) == {"p-1:1", "p-1:3"} and "p-1:2" not in plan.deliveries
    assert dict(plan.processed) == {"gpu-events": 1, "token-events": 1}
    assert [(dict(letter.headers)["dlq-reason"], dict(letter.headers)["source-offset"]) for letter in letters] == [
        (b"unwritable:int_overflow", b"11"), (b"unwritable:int_overflow", b"5")]
    assert letters[0].value == records[1].value and plan.offsets == {("gpu-events", 0): 12, ("gpu-events", 1): 6,
                                                                    ("token-events", 0): 4}


def test_the_consume_loop_dead_letters_a_poison_event_stores_the_rest_and_never_calls_on_fatal(monkeypatch):
    records = [Record("gpu-events", 0, seq, gpu(seq, "gpu-0", 10.0 * seq)) for seq in range(1, 11)]
    plan = plan_batch(records, consumed_at=1.0)
    stored, gpu_states = [], []

    def write_events(_db, _plan, _written_at, keys):
        if "p-1:10" in keys:  # the newest GPU state: the gpu_latest update must fall back to seq 9
            raise OverflowError("MongoDB can only handle up to 8-byte ints")
        stored.extend(keys)
        return set(keys)

    def write_gpu_latest(_db, plan, _updated_at):
        gpu_states.append({g: e.seq for g, e in plan.gpu_latest.items()})
        return {}

    monkeypatch.setattr(loop_module.store, "write_events", write_events)
    monkeypatch.setattr(loop_module.store, "write_gpu_latest", write_gpu_latest)
    fatal = []
    producer = AckingProducer()
    settings_ = ProcessorSettings(name="processor-t", bootstrap="127.0.0.1:1", mongo_uri="mongodb://x", write_chunk_size=4)
    consume = ConsumeLoop(settings_, db=None, producer=producer, on_fatal=fatal.append)
    letters_before = metrics.DEAD_LETTERS.labels(reason="unwritable:int_overflow")._value.get()

    assert consume._write(plan) is True
    assert fatal == []
    assert sorted(stored) == sorted(f"p-1:{seq}" for seq in range(1, 10))
    assert gpu_states == [{"gpu-0": 9}]
    assert [(topic, value, headers["dlq-reason"]) for topic, value, headers in producer.produced] == [
        ("events-dlq", records[9].value, b"unwritable:int_overflow")]
    assert metrics.DEAD_LETTERS.labels(reason="unwritable:int_overflow")._value.get() == letters_before + 1
    assert plan.offsets == {("gpu-events", 0): 11}, "the batch is committed past the poison event"


def test_an_oversized_dead_letter_is_cut_to_what_the_producer_can_send():
    from chaos_dr_stack.processor.batching import DLQ_MAX_KEY_BYTES, DLQ_MAX_VALUE_BYTES

    huge = b'{"kind":"token","model":"' + b"m" * 2_000_000 + b'"}'
    plan = plan_batch([Record("token-events", 0, 9, huge, key=b"k" * 5000),
                       Record("token-events", 0, 10, b"{bad", key=b"k")], consumed_at=1.0)
    cut, small = plan.dead_letters
    assert (len(cut.value), len(cut.key)) == (DLQ_MAX_VALUE_BYTES, DLQ_MAX_KEY_BYTES)
    assert cut.value == huge[:DLQ_MAX_VALUE_BYTES]
    assert dict(cut.headers)["dlq-truncated-from"] == f"{len(huge)},5000".encode()
    assert (small.value, small.key, "dlq-truncated-from" in dict(small.headers)) == (b"{bad", b"k", False)
