"""The CA3 pipeline against a real Apache Kafka node and a real SecantusDB: 2 processors and the producers
as subprocesses. The tests run in file order on one module-scoped pipeline; each leaves it running for
the next, except the last two, which stop it."""
from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from confluent_kafka import Consumer
from pymongo import MongoClient
from pymongo.database import Database

from chaos_dr_stack.events import encode_event, gpu_event
from chaos_dr_stack.local.ports import wait_until
from chaos_dr_stack.processor import store
from chaos_dr_stack.processor.batching import Record, plan_batch

from service_fixtures import Proc, Services, metric, sigkill, wait_http_ok

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

GPUS = ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]


@dataclass
class Pipeline:
    services: Services
    processors: list[Proc]
    producers: Proc
    db: Database

    def running_processors(self) -> list[Proc]:
        return [p for p in self.processors if p.alive()]

    def acks(self) -> list[dict]:
        return httpx.get(self.producers.url + "/acks", timeout=2).json()["producers"]

    def total(self, name: str, labels: dict[str, str] | None = None) -> float:
        return sum(metric(p, name, labels) for p in self.running_processors())


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    with Services(tmp_path_factory.mktemp("services")) as s:
        s.start_broker()
        s.start_mongo()
        s.create_topics()
        yield s


@pytest.fixture(scope="module")
def pipeline(services: Services) -> Iterator[Pipeline]:
    processors = [services.start_processor(0), services.start_processor(1)]
    # 4 producer ids, so the keys spread over both processors' partitions.
    producers = services.start_producers("--producers", "4", "--rate", "40", "--gpus", str(len(GPUS)))
    for proc in (*processors, producers):
        wait_http_ok(proc)
    client = MongoClient(services.mongo_uri, serverSelectionTimeoutMS=3000)
    pipe = Pipeline(services, processors, producers, client.ca3)
    assigned = wait_until(lambda: pipe.total("app_assigned_partitions") == 6, 30, 0.2)
    assert assigned, f"the 2 processors own {pipe.total('app_assigned_partitions')} partitions, expected all 6"
    yield pipe
    client.close()


def test_gpu_latest_never_goes_back_in_time_on_secantusdb(services: Services):
    """The conditional upsert (and its E11000 handling) against the real server."""
    client = store.connect(services.mongo_uri, timeout_ms=3000, socket_timeout_ms=5000, app_name="test")
    db = store.database(client, f"store-{uuid.uuid4().hex[:8]}")

    def write(seq: int, produced_at: float) -> None:
        event = gpu_event("p-t", seq, "gpu-x", produced_at=produced_at, utilization_pct=float(seq),
                          memory_used_mb=1.0, memory_total_mb=2.0, temperature_c=3.0, power_w=4.0)
        plan = plan_batch([Record("gpu-events", 0, seq, encode_event(event))], consumed_at=produced_at)
        assert store.write_events(db, plan, written_at=produced_at + 1) == {f"p-t:{seq}"}
        store.write_gpu_latest(db, plan, updated_at=produced_at + 1)

    write(2, 20.0)
    write(1, 10.0)  # older, arrives later: must not win
    assert (store.one_gpu(db, "gpu-x")["seq"], store.one_gpu(db, "gpu-x")["produced_at"]) == (2, 20.0)
    write(3, 20.0)  # same time: the stored one stays
    assert store.one_gpu(db, "gpu-x")["seq"] == 2
    write(4, 30.0)
    assert store.one_gpu(db, "gpu-x")["seq"] == 4

    replay = plan_batch([Record("gpu-events", 0, 4, encode_event(gpu_event(
        "p-t", 4, "gpu-x", produced_at=30.0, utilization_pct=9.0, memory_used_mb=1.0, memory_total_mb=2.0,
        temperature_c=3.0, power_w=4.0)))], consumed_at=99.0)
    assert store.write_events(db, replay, written_at=100.0) == set()
    stored = db["events"].find_one({"_id": "p-t:4"})
    assert (stored["deliveries"], stored["written_at"], stored["utilization_pct"]) == (2, 31.0, 4.0)
    store.ensure_indexes(db)
    store.ensure_indexes(db)  # idempotent
    assert set(db["events"].index_information()) == {"_id_", "produced_at_1", "written_at_1", "producer_id_1_seq_1"}
    client.drop_database(db.name)
    client.close()


def test_events_flow_and_gpu_info_returns_every_gpu(pipeline: Pipeline):
    api = pipeline.processors[0].url
    assert wait_until(lambda: len(httpx.get(api + "/gpu/info", timeout=2).json()["gpus"]) == len(GPUS), 15, 0.2)
    gpus = httpx.get(api + "/gpu/info", timeout=2).json()["gpus"]
    assert [g["gpu_id"] for g in gpus] == GPUS
    for g in gpus:
        assert set(g) >= {"producer_id", "seq", "produced_at", "updated_at", "utilization_pct"}
        assert time.time() - g["produced_at"] < 10, f"{g['gpu_id']} state is {time.time() - g['produced_at']:.1f}s old"

    one = httpx.get(pipeline.processors[1].url + "/gpu/info", params={"gpu_id": "gpu-2"}, timeout=2)
    assert one.status_code == 200 and one.json()["gpu_id"] == "gpu-2"
    bad = httpx.get(api + "/gpu/info", params={"gpu_id": "gpu 2;drop"}, timeout=2)
    assert bad.status_code == 400 and "gpu_id" in bad.json()["detail"]
    missing = httpx.get(api + "/gpu/info", params={"gpu_id": "gpu-99"}, timeout=2)
    assert (missing.status_code, missing.json()["detail"]) == (404, "gpu_id 'gpu-99' not found")

    health = httpx.get(api + "/health", timeout=2)
    assert (health.status_code, health.json()) == (200, {"status": "ok", "kafka": True, "mongo": True})
    produced = metric(pipeline.producers, "app_produced_messages_total")
    assert produced >= 40, f"producers acknowledged only {produced} events"


def _read_dlq(bootstrap: str, wanted: int, timeout: float) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"dlq-reader-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000, "fetch.wait.max.ms": 100})
    consumer.subscribe(["events-dlq"])
    found, deadline = [], time.monotonic() + timeout
    try:
        while len(found) < wanted and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                found.append(msg)
    finally:
        consumer.close()
    return found


def test_malformed_events_go_to_the_dead_letter_topic_and_good_ones_keep_flowing(pipeline: Pipeline):
    bad_gpu = encode_event(gpu_event("producer-x", 1, "gpu-0", produced_at=time.time(), utilization_pct=50.0,
                                     memory_used_mb=1.0, memory_total_mb=2.0, temperature_c=3.0, power_w=4.0))
    bad_gpu = bad_gpu.replace(b'"utilization_pct":50.0', b'"utilization_pct":150')
    injected = {
        "bad_json": ("gpu-events", "{not json " + uuid.uuid4().hex),
        "wrong_type:seq": ("token-events", '{"producer_id":"producer-x","seq":"seven","produced_at":1.0,"kind":"token"}'),
        "out_of_range:utilization_pct": ("gpu-events", bad_gpu.decode()),
    }
    coordinates = {}
    for reason, (topic, raw) in injected.items():
        response = httpx.post(pipeline.producers.url + "/inject", json={"topic": topic, "raw": raw}, timeout=10)
        assert response.status_code == 200, response.text
        coordinates[reason] = response.json()

    letters = {m.value().decode(): m for m in _read_dlq(pipeline.services.bootstrap, len(injected), 20)}
    for reason, (topic, raw) in injected.items():
        assert raw in letters, f"dead letter for {reason} not found in events-dlq; found {list(letters)}"
        headers = {k: v.decode() for k, v in letters[raw].headers()}
        assert headers == {
            "dlq-reason": reason,
            "source-topic": topic,
            "source-partition": str(coordinates[reason]["partition"]),
            "source-offset": str(coordinates[reason]["offset"]),
        }
        # Counted once its whole batch is settled, after the letter itself is on the topic: seen 0 in CI when read
        # at once, with the machine loaded.
        def counted(reason: str = reason) -> bool:
            return pipeline.total("app_dead_letter_messages_total", {"reason": reason}) >= 1

        wait_until(counted, 15, 0.2)
        assert pipeline.total("app_dead_letter_messages_total", {"reason": reason}) == 1

    acked_now = sum(p["acked"] for p in pipeline.acks())
    caught_up = wait_until(lambda: pipeline.db.events.count_documents({}) >= acked_now, 15, 0.2)
    assert caught_up, f"events stored {pipeline.db.events.count_documents({})}, acknowledged {acked_now}"
    assert all(p.alive() for p in pipeline.processors)


def _health(proc: Proc) -> tuple[int, dict]:
    response = httpx.get(proc.url + "/health", timeout=3)
    return response.status_code, response.json()


def test_health_reports_a_held_broker_and_recovers_without_leaving_the_service(pipeline: Pipeline):
    """Kafka down, Mongo up: /health says so with a 200 (the replica still serves CUJ-1, so it stays ready), and
    answers fast: the Kafka check runs in the background."""
    broker = next(p for p in pipeline.services.procs if p.name == "kafka" and p.alive())
    proc = pipeline.processors[0]
    os.kill(broker.pid, signal.SIGSTOP)
    took = []
    try:
        degraded = wait_until(lambda: _health(proc) == (200, {"status": "degraded", "kafka": False, "mongo": True}),
                              5, 0.2)
        # Short: a node stopped longer than its broker session (4 s) fences itself when it resumes, and the
        # consumers lose their coordinator for a while.
        for _ in range(5):
            started = time.monotonic()
            _health(proc)
            took.append(round(time.monotonic() - started, 3))
            time.sleep(0.2)
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    assert degraded, f"/health while the broker is stopped: {_health(proc)}"
    # A /health that waited for the check would wait its 0.5 s at every expiry of the 1 s cache: at least 2 of these
    # 5 calls, 0.2 s apart. One slow call is allowed: in CI, beside a game day, one took 0.535 s.
    slow = [t for t in took if t >= 0.45]
    assert len(slow) <= 1, f"/health waited for the Kafka check while the broker was stopped: {took}"
    assert wait_until(lambda: _health(proc) == (200, {"status": "ok", "kafka": True, "mongo": True}), 10, 0.2), (
        f"/health after resume: {_health(proc)}")
    assert all(p.alive() for p in pipeline.processors)


def test_mongo_outage_holds_the_batch_and_recovers(pipeline: Pipeline):
    services = pipeline.services
    mongo = next(p for p in services.procs if p.name == "secantus" and p.alive())
    errors_before = pipeline.total("app_write_errors_total")
    sigkill(mongo)
    proc = pipeline.processors[1]
    assert wait_until(lambda: _health(proc) == (503, {"status": "down", "kafka": True, "mongo": False}), 5, 0.2), _health(proc)
    failing = wait_until(lambda: pipeline.total("app_write_errors_total") > errors_before, 10, 0.2)
    services.start_mongo()
    assert failing, "no batch write failed while Mongo was down"
    assert all(p.alive() for p in pipeline.processors), "a processor died during the Mongo outage"
    assert wait_until(lambda: _health(proc)[0] == 200, 15, 0.2), f"/health after Mongo restart: {_health(proc)}"
    acked_now = sum(p["acked"] for p in pipeline.acks())
    assert wait_until(lambda: pipeline.db.events.count_documents({}) >= acked_now, 20, 0.3), (
        f"after the outage: stored {pipeline.db.events.count_documents({})}, acknowledged {acked_now}"
    )


def test_sigkill_of_a_processor_loses_no_acknowledged_event(pipeline: Pipeline, record_property):
    victim = max(pipeline.processors, key=lambda p: metric(p, "app_processed_messages_total"))
    survivor = next(p for p in pipeline.processors if p is not victim)
    killed_at = sigkill(victim)
    took_over = wait_until(lambda: metric(survivor, "app_assigned_partitions") == 6, 25, 0.1)
    takeover_s = time.monotonic() - killed_at
    record_property("takeover_seconds", round(takeover_s, 2))
    assert took_over, f"{survivor.name} owns {metric(survivor, 'app_assigned_partitions')} partitions 25 s after the kill"

    assert httpx.post(pipeline.producers.url + "/rate", json={"rate": 0}, timeout=2).status_code == 200
    settled = wait_until(lambda: all(p["acked"] + p["failed"] == p["sent"] for p in pipeline.acks()), 10, 0.2)
    assert settled, f"deliveries still outstanding: {pipeline.acks()}"
    acks = pipeline.acks()
    expected = sum(p["acked"] for p in acks)
    assert wait_until(lambda: pipeline.db.events.count_documents({}) >= expected, 30, 0.3), (
        f"stored {pipeline.db.events.count_documents({})} events, the broker acknowledged {expected}"
    )

    for p in acks:
        acked_seqs = set(range(1, p["max_acked_seq"] + 1)) - set(p["failed_seqs"])
        stored = {d["seq"] for d in pipeline.db.events.find({"producer_id": p["producer_id"]}, {"seq": 1})}
        assert p["failed"] == 0, f"{p['producer_id']}: {p['failed']} sends failed without a fault"
        assert acked_seqs - stored == set(), f"{p['producer_id']} lost acknowledged seqs {sorted(acked_seqs - stored)[:20]}"
        assert stored - acked_seqs == set(), f"{p['producer_id']} stored seqs never acknowledged {sorted(stored - acked_seqs)[:20]}"
    per_key = list(pipeline.db.events.aggregate([
        {"$group": {"_id": {"p": "$producer_id", "s": "$seq"}, "n": {"$sum": 1}}}, {"$match": {"n": {"$gt": 1}}}]))
    assert per_key == [], f"more than one document for {per_key[:5]}"
    record_property("duplicate_deliveries", pipeline.db.events.count_documents({"deliveries": {"$gt": 1}}))

    for gpu in GPUS:
        newest = pipeline.db.events.find_one({"gpu_id": gpu}, sort=[("produced_at", -1)])
        latest = pipeline.db.gpu_latest.find_one({"_id": gpu})
        assert (latest["produced_at"], latest["seq"]) == (newest["produced_at"], newest["seq"]), (
            f"gpu_latest for {gpu} is seq {latest['seq']} at {latest['produced_at']}, newest event is "
            f"seq {newest['seq']} at {newest['produced_at']}"
        )


def test_pipeline_recovers_from_a_broker_restart(pipeline: Pipeline, record_property):
    """A SIGKILLed broker restarts from its log with its topics, offsets and producer ids: the same producers
    carry on (none is replaced) and the processors resume from their committed offsets."""
    services = pipeline.services
    sigkill(next(p for p in services.procs if p.name == "kafka" and p.alive()))
    services.start_broker()
    restarted = time.time()
    before = {p["producer_id"]: p["acked"] for p in pipeline.acks()}
    assert httpx.post(pipeline.producers.url + "/rate", json={"rate": 40}, timeout=2).status_code == 200

    def flowing() -> bool:
        acked = all(p["acked"] >= before[p["producer_id"]] + 20 for p in pipeline.acks())
        return acked and pipeline.db.events.count_documents({"produced_at": {"$gt": restarted}}) >= 80

    recovered = wait_until(flowing, 25, 0.2)
    record_property("broker_restart_recovery_seconds", round(time.time() - restarted, 2))
    assert recovered, (f"25 s after the broker restart: acks {pipeline.acks()}, events stored since "
                       f"{pipeline.db.events.count_documents({'produced_at': {'$gt': restarted}})}")
    assert metric(pipeline.producers, "app_producer_replaced_total") == 0
    assert len(pipeline.running_processors()) == 1, "the survivor of the kill did not ride out the broker restart"


def test_sigterm_stops_a_processor_cleanly_and_quickly(pipeline: Pipeline, record_property):
    [proc] = pipeline.running_processors()
    started = time.monotonic()
    proc.popen.send_signal(signal.SIGTERM)
    code = proc.popen.wait(15)
    elapsed = time.monotonic() - started
    record_property("processor_sigterm_seconds", round(elapsed, 2))
    assert code == 0, f"{proc.name} exited with {code}; log tail:\n{proc.log()[-1500:]}"
    assert elapsed < 10, f"{proc.name} took {elapsed:.1f}s to stop"
    assert "consumer closed" in proc.log()


def test_sigterm_stops_the_producers_after_a_bounded_flush(pipeline: Pipeline):
    started = time.monotonic()
    pipeline.producers.popen.send_signal(signal.SIGTERM)
    code = pipeline.producers.popen.wait(15)
    elapsed = time.monotonic() - started
    assert code == 0, f"producers exited with {code}; log tail:\n{pipeline.producers.log()[-1500:]}"
    assert elapsed < 7, f"producers took {elapsed:.1f}s to stop"
