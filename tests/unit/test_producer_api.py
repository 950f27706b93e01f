from fastapi.testclient import TestClient

from chaos_dr_stack.producers.api import create_app
from chaos_dr_stack.producers.ledger import AckLedger


class FakeMessage:
    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 41


class FakeProducer:
    def __init__(self, deliver: bool = True):
        self.deliver, self.sent, self._callbacks = deliver, [], []

    def produce(self, topic, value, key, on_delivery):
        self.sent.append((topic, value, key))
        self._callbacks.append(on_delivery)

    def flush(self, _timeout):
        if self.deliver:
            for callback in self._callbacks:
                callback(None, FakeMessage())
            self._callbacks = []
        return len(self._callbacks)


def make(producer=None, kafka=True):
    rates = []
    ledger = AckLedger()
    ledger.register("producer-0-x", 1.0)
    ledger.acked("producer-0-x", 1)
    app = create_app(ledger, producer or FakeProducer(), kafka_ok=lambda: kafka, set_rate=rates.append)
    return TestClient(app), rates


def test_acks_lists_every_producer():
    c, _ = make()
    [entry] = c.get("/acks").json()["producers"]
    assert (entry["producer_id"], entry["acked"], entry["max_acked_seq"], entry["failed_seqs"]) == ("producer-0-x", 1, 1, [])


def test_inject_sends_raw_bytes_and_reports_the_offset():
    producer = FakeProducer()
    c, _ = make(producer)
    response = c.post("/inject", json={"topic": "gpu-events", "raw": "{not json"})
    assert response.status_code == 200
    assert response.json() == {"topic": "gpu-events", "partition": 0, "offset": 41}
    assert producer.sent == [("gpu-events", b"{not json", None)]


def test_inject_rejects_other_topics():
    c, _ = make()
    response = c.post("/inject", json={"topic": "events-dlq", "raw": "x"})
    assert response.status_code == 400
    assert "'events-dlq'" in response.json()["detail"]


def test_inject_without_ack_is_503():
    c, _ = make(FakeProducer(deliver=False))
    response = c.post("/inject", json={"topic": "token-events", "raw": "x"})
    assert response.status_code == 503
    assert "no acknowledgement" in response.json()["detail"]


def test_rate_is_validated_and_applied():
    c, rates = make()
    assert c.post("/rate", json={"rate": 50}).json() == {"rate": 50.0}
    assert c.post("/rate", json={"rate": -1}).status_code == 422
    assert rates == [50.0]


def test_health_is_503_when_kafka_is_down():
    c, _ = make(kafka=False)
    response = c.get("/health")
    assert (response.status_code, response.json()) == (503, {"status": "down", "kafka": False})
