"""Poison events on the live local stack: each one is dead-lettered once, no processor replica restarts, and no
acknowledged event is lost.

Planted ground truth: N raw events through the producers' ``POST /inject``, each valid JSON that once passed (or
crashed) validation and then could not be stored: a ``seq`` or a count past int64, a number too large for a float,
a lone surrogate in ``model`` (JSON's ``\\ud800`` escape: valid JSON, not encodable UTF-8), an unbounded ``model``,
and one message of 1.2 MB, which the broker takes but the dead-letter producer could not send (sent directly: /inject
cannot send it either). Before the fix, the first of them crash-looped both replicas (OverflowError out of the Mongo
write), and the last would have held its partition with dead-letter retries.
"""
from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from probes.processing import delivery_report
from chaos_dr_stack.local.api import LocalStack
from chaos_dr_stack.processor.batching import DLQ_MAX_VALUE_BYTES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DEAD_LETTER_METRIC = "app_dead_letter_messages_total"


def _token(producer_id: str, seq: int, **changes: object) -> dict:
    return {"producer_id": producer_id, "seq": seq, "produced_at": time.time(), "kind": "token",
            "model": "llama-3-8b", "tokens_in": 10, "tokens_out": 5, **changes}


def _gpu(producer_id: str, seq: int, **changes: object) -> dict:
    return {"producer_id": producer_id, "seq": seq, "produced_at": time.time(), "kind": "gpu", "gpu_id": "gpu-0",
            "utilization_pct": 50.0, "memory_used_mb": 1024, "memory_total_mb": 81920, "temperature_c": 60.0,
            "power_w": 300.0, **changes}


def poison_events(producer_id: str) -> list[tuple[str, str, str]]:
    """(topic, raw JSON text, expected dlq-reason). The text is what /inject encodes as UTF-8; json.dumps writes the
    lone surrogate as the escape ``\\ud800``, which is how it arrives from a real client."""
    cases = [
        ("token-events", _token(producer_id, 2**63), "out_of_range:seq"),
        ("token-events", _token(producer_id, 2, tokens_in=2**64), "out_of_range:tokens_in"),
        ("token-events", _token(producer_id, 3, model="\ud800"), "bad_format:model"),
        ("token-events", _token(producer_id, 4, model="m" * 10_000), "bad_format:model"),
        ("gpu-events", _gpu(producer_id, 5, memory_used_mb=2**63), "out_of_range:memory_used_mb"),
        ("gpu-events", _gpu(producer_id, 6, temperature_c=10**400), "out_of_range:temperature_c"),
        ("gpu-events", _gpu(producer_id, 7, produced_at=10**400), "out_of_range:produced_at"),
    ]
    return [(topic, json.dumps(doc), reason) for topic, doc, reason in cases]


def processor_instances(control: str) -> dict[str, dict]:
    body = httpx.get(f"{control}/instances", params={"component": "processor"}, timeout=5).json()
    return {i["name"]: i for i in body["instances"]}


def dead_letters_total(instances: dict[str, dict]) -> float:
    """Sum of the dead-letter counter over every replica's /metrics (a replica that does not answer counts 0, so a
    restart shows up as a shortfall too)."""
    total = 0.0
    for instance in instances.values():
        try:
            text = httpx.get(instance["url"] + "/metrics", timeout=3).text
        except httpx.HTTPError:
            continue
        for family in text_string_to_metric_families(text):
            total += sum(s.value for s in family.samples if s.name == DEAD_LETTER_METRIC)
    return total


def send_oversized(bootstrap: str, topic: str, value: bytes) -> tuple[str, int, int]:
    """Plant a message larger than a dead letter may hold whole (DLQ_MAX_VALUE_BYTES), straight to the broker, but
    within what Apache Kafka takes by default (message.max.bytes, about 1 MiB)."""
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 5_000_000, "enable.idempotence": False,
                         "acks": "all"})
    delivered = []
    producer.produce(topic, value=value, on_delivery=lambda err, msg: delivered.append((err, msg)))
    producer.flush(20)
    assert len(delivered) == 1 and delivered[0][0] is None, f"the oversized message was not acknowledged: {delivered}"
    msg = delivered[0][1]
    return msg.topic(), msg.partition(), msg.offset()


def read_dead_letters(bootstrap: str, wanted: set[tuple[str, int, int]], timeout: float) -> dict[tuple, dict]:
    """The ``events-dlq`` messages whose source coordinates are in ``wanted``: their headers and value size."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"poison-dlq-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition("events-dlq", 0, OFFSET_BEGINNING)])  # no group join to wait for
    found: dict[tuple, dict] = {}
    deadline = time.monotonic() + timeout
    try:
        while set(found) != wanted and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            headers = {k: v.decode() for k, v in msg.headers() or []}
            source = (headers.get("source-topic"), int(headers.get("source-partition", -1)),
                      int(headers.get("source-offset", -1)))
            if source in wanted:
                found[source] = {**headers, "size": len(msg.value() or b"")}
    finally:
        consumer.close()
    return found


def test_poison_events_are_dead_lettered_without_a_restart_or_a_lost_event(local_stack: LocalStack, record_property):
    control = local_stack.endpoints["control"]
    before = processor_instances(control)
    assert all(i["ready"] for i in before.values()), f"replicas not ready before the test: {before}"
    letters_before = dead_letters_total(before)
    since = time.time()
    started = time.monotonic()

    producer_id = f"poison-{uuid.uuid4().hex[:8]}"
    expected: dict[tuple[str, int, int], str] = {}
    for topic, raw, reason in poison_events(producer_id):
        response = httpx.post(local_stack.endpoints["producers"] + "/inject", json={"topic": topic, "raw": raw},
                              timeout=10)
        assert response.status_code == 200, f"inject to {topic} answered {response.status_code}: {response.text}"
        at = response.json()
        expected[(at["topic"], at["partition"], at["offset"])] = reason
    oversized = json.dumps(_token(producer_id, 8, model="m" * 900_000)).encode()
    expected[send_oversized(local_stack.endpoints["kafka_bootstrap"], "token-events", oversized)] = "bad_format:model"
    poison = list(expected)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and dead_letters_total(before) - letters_before < len(poison):
        time.sleep(0.3)
    # Producers keep sending meanwhile: the report waits for the backlog behind the poison to drain.
    report = delivery_report(since=since - 1, settle_timeout=30, configuration={"local_control_url": control})
    after = processor_instances(control)
    grown = dead_letters_total(before) - letters_before
    record_property("poison_events", len(poison))
    record_property("dead_letters_grown", grown)
    record_property("acknowledged_events_checked", report["checked"])
    record_property("seconds", round(time.monotonic() - started, 1))

    restarts = {name: after[name]["restarts"] - before[name]["restarts"] for name in before}
    assert restarts == {name: 0 for name in before}, (
        f"processor restarts during the test: {restarts}; exit codes {[i['last_exit_code'] for i in after.values()]}"
    )
    assert grown == len(poison), f"the dead-letter counter grew by {grown}, expected exactly {len(poison)}"
    assert report["lost"] == 0, f"{report['lost']} of {report['checked']} acknowledged events lost: {report['lost_events']}"

    letters = read_dead_letters(local_stack.endpoints["kafka_bootstrap"], set(expected), 30)
    assert {at: letter["dlq-reason"] for at, letter in letters.items()} == expected
    cut = [letter for letter in letters.values() if "dlq-truncated-from" in letter]
    assert [(c["size"], c["dlq-truncated-from"]) for c in cut] == [(DLQ_MAX_VALUE_BYTES, f"{len(oversized)},0")]
