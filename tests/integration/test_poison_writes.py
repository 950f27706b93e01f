"""Generated events, valid and malformed, through the processor's real write path (``plan_batch`` and
``ConsumeLoop._write``: chunked inserts, the split around a refused event, dead letters, gpu_latest) against a real
SecantusDB. Each event ends up stored, or dead-lettered with its reason; nothing raises and nothing calls on_fatal.

Some valid events are corrupted after validation (an int past int64, a lone surrogate, 17 MB, a server-side
validator), as a hole in the validator would let them through: the write path must find exactly those. The dead
letters go to a fake producer that acknowledges them; the broker is not under test here.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.database import Database

from event_strategies import raw_events
from fake_kafka import AckingProducer
from service_fixtures import processor_database
from chaos_dr_stack.events import InvalidEvent, encode_event, parse_event, token_event
from chaos_dr_stack.processor import store
from chaos_dr_stack.processor.batching import Record, newest_gpu_states, plan_batch
from chaos_dr_stack.processor.loop import ConsumeLoop
from chaos_dr_stack.processor.settings import ProcessorSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EVENTS_WANTED = 10_000
"""Generated events the property test pushes through the database, at least (SecantusDB stores ~2k/s)."""
CORRUPTIONS = [(2**64, "int_overflow"), (-(2**63) - 1, "int_overflow"), ("\ud800", "bad_string"),
               ("a\udfffb", "bad_string")]
"""A value set on a valid event's document after validation, and the kind the write path must name."""




@pytest.fixture(scope="module")
def mongo(tmp_path_factory) -> Iterator[Database]:
    with processor_database(tmp_path_factory.mktemp("poison-writes"), "poison-writes") as db:
        yield db


def consume_loop(db: Database, producer: AckingProducer, fatal: list) -> ConsumeLoop:
    settings_ = ProcessorSettings(name="processor-t", bootstrap="127.0.0.1:1", mongo_uri="mongodb://unused",
                                  write_attempt_timeout_s=60.0)
    return ConsumeLoop(settings_, db=db, producer=producer, on_fatal=fatal.append)


def letters_by_offset(producer: AckingProducer) -> dict[int, str]:
    return {int(h["source-offset"]): h["dlq-reason"].decode() for _, _, h in producer.produced}


def test_generated_events_are_each_stored_or_dead_lettered_with_their_reason(mongo: Database, record_property):
    pushed = Counter()

    @settings(max_examples=90, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(raws=st.lists(raw_events("hp"), min_size=100, max_size=220), data=st.data())
    def one_batch(raws: list[bytes], data) -> None:
        mongo["events"].delete_many({})
        mongo["gpu_latest"].delete_many({})
        # Redeliveries inside the batch: a few values again, at later offsets.
        raws = raws + data.draw(st.lists(st.sampled_from(raws), max_size=10), label="redelivered")
        records = [Record("gpu-events", 0, offset, raw) for offset, raw in enumerate(raws)]
        plan = plan_batch(records, consumed_at=1.0)
        corrupt = {key: data.draw(st.sampled_from(CORRUPTIONS), label=f"corrupt {key}")
                   for key in data.draw(st.sets(st.sampled_from(sorted(plan.event_docs)), max_size=3) if plan.event_docs
                                        else st.just(set()), label="corrupted keys")}
        for key, (value, _kind) in corrupt.items():
            plan.event_docs[key]["poison"] = value
        expected_states = newest_gpu_states(e for k, e in plan.events.items() if k not in corrupt)

        producer, fatal = AckingProducer(), []
        assert consume_loop(mongo, producer, fatal)._write(plan) is True
        assert fatal == []

        letters = letters_by_offset(producer)
        deliveries: Counter[str] = Counter()
        first: dict[str, dict] = {}
        for record in records:
            try:
                event = parse_event(record.value)
            except InvalidEvent as exc:
                assert letters.pop(record.offset) == exc.reason
                pushed["dead_lettered"] += 1
                continue
            if event.key in corrupt:
                assert letters.pop(record.offset) == f"unwritable:{corrupt[event.key][1]}"
                pushed["unwritable"] += 1
                continue
            deliveries[event.key] += 1
            first.setdefault(event.key, event.to_doc())
        assert letters == {}, f"dead letters for events that were not refused: {letters}"

        stored = {doc["_id"]: doc for doc in mongo["events"].find({})}
        assert set(stored) == set(first), "every valid event stored, and nothing else"
        for key, doc in stored.items():
            assert {k: doc[k] for k in first[key]} == first[key] and doc["deliveries"] == deliveries[key]
            assert "poison" not in doc
        states = {doc["_id"]: (doc["producer_id"], doc["seq"]) for doc in mongo["gpu_latest"].find({})}
        assert states == {g: (e.producer_id, e.seq) for g, e in expected_states.items()}
        pushed["stored"] += len(first)
        pushed["stored_deliveries"] += sum(deliveries.values())
        pushed["events"] += len(records)

    one_batch()
    for name, count in pushed.items():
        record_property(name, count)
    assert pushed["events"] >= EVENTS_WANTED, f"only {pushed['events']} events generated: {dict(pushed)}"
    assert min(pushed["stored"], pushed["dead_lettered"], pushed["unwritable"]) > 0, dict(pushed)


def token_batch(producer_id: str, count: int, **changes: int) -> list[Record]:
    return [Record("token-events", 0, seq, encode_event(token_event(
        producer_id, seq, "m", produced_at=100.0 + seq, tokens_in=changes.get(str(seq), 1), tokens_out=2)))
        for seq in range(1, count + 1)]


def test_a_document_too_large_is_refused_alone_and_its_chunk_is_not_sent_twice(mongo: Database):
    plan = plan_batch(token_batch("big", 20), consumed_at=1.0)
    plan.event_docs["big:7"]["poison"] = "x" * 17_000_000
    producer, fatal = AckingProducer(), []
    assert consume_loop(mongo, producer, fatal)._write(plan) is True
    assert letters_by_offset(producer) == {7: "unwritable:too_large"} and fatal == []
    stored = {d["_id"]: d["deliveries"] for d in mongo["events"].find({"producer_id": "big"})}
    assert stored == {f"big:{seq}": 1 for seq in range(1, 21) if seq != 7}, "no false duplicate delivery"


def test_a_document_the_server_validator_refuses_is_dead_lettered(mongo: Database):
    db = mongo.client.get_database("validated", write_concern=store.WRITE_CONCERN)
    db.drop_collection("events")
    db.create_collection("events", validator={"$jsonSchema": {"properties": {"tokens_in": {"maximum": 1000}}}})
    plan = plan_batch(token_batch("val", 30, **{"4": 5000, "20": 10**12}), consumed_at=1.0)
    producer, fatal = AckingProducer(), []
    assert consume_loop(db, producer, fatal)._write(plan) is True
    assert letters_by_offset(producer) == {4: "unwritable:validation", 20: "unwritable:validation"} and fatal == []
    stored = {d["_id"]: d["deliveries"] for d in db["events"].find({})}
    assert stored == {f"val:{seq}": 1 for seq in range(1, 31) if seq not in (4, 20)}
    mongo.client.drop_database("validated")


def test_a_raw_event_with_an_int64_overflow_never_reaches_the_database(mongo: Database):
    """The original crash: seq past int64 passed validation and the insert raised OverflowError."""
    raw = json.dumps({"producer_id": "ovf", "seq": 2**63, "produced_at": 1.0, "kind": "token", "model": "m",
                      "tokens_in": 1, "tokens_out": 2}).encode()
    plan = plan_batch([Record("token-events", 1, 42, raw)], consumed_at=1.0)
    producer, fatal = AckingProducer(), []
    assert consume_loop(mongo, producer, fatal)._write(plan) is True
    assert letters_by_offset(producer) == {42: "out_of_range:seq"} and fatal == []
    assert mongo["events"].count_documents({"producer_id": "ovf"}) == 0
