import json

from pymongo import UpdateOne

from chaos_dr_stack.events import InvalidEvent, encode_event, gpu_event, token_event
from chaos_dr_stack.processor.batching import (
    Record,
    dead_letter,
    duplicate_ops,
    event_documents,
    gpu_latest_op,
    gpu_latest_ops,
    plan_batch,
)


def gpu(seq: int, gpu_id: str, produced_at: float, producer: str = "p-0", util: float = 50.0):
    return gpu_event(producer, seq, gpu_id, produced_at=produced_at, utilization_pct=util, memory_used_mb=1.0,
                     memory_total_mb=2.0, temperature_c=40.0, power_w=100.0)


def rec(event_or_raw, offset: int, topic: str = "gpu-events", partition: int = 0) -> Record:
    value = event_or_raw if isinstance(event_or_raw, bytes) else encode_event(event_or_raw)
    return Record(topic=topic, partition=partition, offset=offset, value=value, key=b"p-0", timestamp=1000.5)


def test_valid_events_become_documents_with_kafka_coordinates():
    plan = plan_batch([rec(gpu(1, "gpu-0", 10.0), offset=5, partition=2)], consumed_at=11.0)
    [doc] = event_documents(plan, written_at=12.0)
    assert doc["_id"] == "p-0:1"
    assert doc["deliveries"] == 1
    assert (doc["kafka_topic"], doc["kafka_partition"], doc["kafka_offset"], doc["kafka_ts"]) == ("gpu-events", 2, 5, 1000.5)
    assert (doc["consumed_at"], doc["written_at"], doc["produced_at"]) == (11.0, 12.0, 10.0)
    assert doc["gpu_id"] == "gpu-0" and doc["kind"] == "gpu"


def test_duplicate_in_one_batch_is_one_document_with_two_deliveries():
    event = gpu(1, "gpu-0", 10.0)
    plan = plan_batch([rec(event, 5), rec(event, 9)], consumed_at=11.0)
    docs = event_documents(plan, written_at=12.0)
    assert [(d["_id"], d["deliveries"], d["kafka_offset"]) for d in docs] == [("p-0:1", 2, 5)]
    assert plan.processed == {"gpu-events": 2}
    assert duplicate_ops(plan, ["p-0:1"]) == [UpdateOne({"_id": "p-0:1"}, {"$inc": {"deliveries": 2}})]


def test_newest_gpu_state_wins_within_a_batch_regardless_of_order():
    records = [rec(gpu(1, "gpu-0", 30.0, util=30), 0), rec(gpu(2, "gpu-0", 10.0, util=10), 1),
               rec(gpu(3, "gpu-1", 5.0), 2), rec(gpu(4, "gpu-0", 20.0, util=20), 3)]
    plan = plan_batch(records, consumed_at=40.0)
    assert {g: (e.seq, e.utilization_pct) for g, e in plan.gpu_latest.items()} == {"gpu-0": (1, 30), "gpu-1": (3, 50.0)}
    assert plan_batch(list(reversed(records)), consumed_at=40.0).gpu_latest == plan.gpu_latest


def test_equal_timestamps_pick_the_same_winner_in_any_order():
    a, b = gpu(5, "gpu-0", 10.0, producer="p-a"), gpu(2, "gpu-0", 10.0, producer="p-b")
    assert plan_batch([rec(a, 0), rec(b, 1)], 0).gpu_latest["gpu-0"] == b
    assert plan_batch([rec(b, 0), rec(a, 1)], 0).gpu_latest["gpu-0"] == b


def test_token_events_are_stored_but_do_not_touch_gpu_state():
    token = token_event("p-0", 2, "m", produced_at=1.0, tokens_in=1, tokens_out=2)
    plan = plan_batch([rec(token, 0, topic="token-events")], consumed_at=2.0)
    assert plan.gpu_latest == {}
    assert list(plan.event_docs) == ["p-0:2"]
    assert plan.processed == {"token-events": 1}


def test_gpu_latest_write_is_conditional_on_the_stored_state_being_older():
    op = gpu_latest_op(gpu(7, "gpu-3", 123.5), updated_at=130.0)
    assert op._filter == {"_id": "gpu-3", "produced_at": {"$lt": 123.5}}
    assert op._upsert is True
    stored = op._doc["$set"]
    assert stored["produced_at"] == 123.5 and stored["updated_at"] == 130.0
    assert (stored["producer_id"], stored["seq"], stored["gpu_id"]) == ("p-0", 7, "gpu-3")
    assert "kind" not in stored


def test_gpu_latest_ops_one_per_gpu():
    plan = plan_batch([rec(gpu(i, f"gpu-{i % 2}", float(i)), i) for i in range(1, 7)], 0)
    assert [(op._filter["_id"], op._doc["$set"]["seq"]) for op in gpu_latest_ops(plan, 9.0)] == [("gpu-0", 6), ("gpu-1", 5)]


def test_malformed_events_become_dead_letters_with_contract_headers():
    bad = b'{"producer_id": "p-0", "seq": "x"}'
    plan = plan_batch([rec(gpu(1, "gpu-0", 1.0), 3, partition=1), rec(bad, 4, partition=1), rec(b"{oops", 5, partition=1)], 0)
    assert [d.reason for d in plan.dead_letters] == ["wrong_type:seq", "bad_json"]
    first = plan.dead_letters[0]
    assert first.value == bad and first.key == b"p-0"
    assert first.headers == [("dlq-reason", b"wrong_type:seq"), ("source-topic", b"gpu-events"),
                             ("source-partition", b"1"), ("source-offset", b"4")]
    assert list(plan.event_docs) == ["p-0:1"]
    assert plan.processed == {"gpu-events": 1}


def test_offsets_cover_every_message_including_dead_letters():
    records = [rec(gpu(1, "gpu-0", 1.0), 7, partition=0), rec(b"bad", 9, partition=0),
               rec(gpu(2, "gpu-0", 1.0), 3, partition=2), rec(b"bad", 2, topic="token-events", partition=1)]
    plan = plan_batch(records, 0)
    assert plan.offsets == {("gpu-events", 0): 10, ("gpu-events", 2): 4, ("token-events", 1): 3}


def test_a_batch_of_only_dead_letters_still_commits_its_offsets():
    plan = plan_batch([rec(b"[]", 0), rec(b"", 1)], 0)
    assert [d.reason for d in plan.dead_letters] == ["not_object", "bad_json"]
    assert event_documents(plan, 1.0) == [] and gpu_latest_ops(plan, 1.0) == []
    assert plan.offsets == {("gpu-events", 0): 2}


def test_dead_letter_carries_the_human_message():
    letter = dead_letter(rec(b"{}", 0), InvalidEvent("missing_field:producer_id", "field 'producer_id' is required"))
    assert letter.message == "field 'producer_id' is required"
    assert json.loads(letter.value) == {}
