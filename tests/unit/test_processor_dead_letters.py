import pytest

from chaos_dr_stack.processor.batching import DLQ_TOPIC, DeadLetter
from chaos_dr_stack.processor.loop import DeadLetterError, _DeadLetterSend


class FakeError:
    def __str__(self) -> str:
        return "broker down"


class FakeProducer:
    """Acks according to a script: per produced value, True = ack, False = error, None = no report yet."""

    def __init__(self, script):
        self.script = script
        self.produced = []
        self._pending = []

    def produce(self, topic, value, key, headers, on_delivery):
        self.produced.append((topic, value, key, headers))
        self._pending.append((value, on_delivery))

    def flush(self, _timeout):
        still = []
        for value, callback in self._pending:
            outcome = self.script[value].pop(0)
            if outcome is None:
                still.append((value, callback))
            else:
                callback(None if outcome else FakeError(), None)
        self._pending = still
        return len(still)


def letters(*values: bytes) -> list[DeadLetter]:
    return [DeadLetter(key=None, value=v, reason="bad_json", message="m", headers=[("dlq-reason", b"bad_json")])
            for v in values]


def test_all_acked_in_one_attempt():
    producer = FakeProducer({b"a": [True], b"b": [True]})
    _DeadLetterSend(letters(b"a", b"b")).attempt(producer, timeout=1)
    assert [(t, v) for t, v, _, _ in producer.produced] == [(DLQ_TOPIC, b"a"), (DLQ_TOPIC, b"b")]


def test_retry_resends_only_the_failed_and_waits_for_the_in_flight():
    producer = FakeProducer({b"a": [True], b"b": [False, True], b"c": [None, True]})
    send = _DeadLetterSend(letters(b"a", b"b", b"c"))
    with pytest.raises(DeadLetterError, match="2 of 3 dead letters not acknowledged"):
        send.attempt(producer, timeout=1)
    send.attempt(producer, timeout=1)
    assert [v for _, v, _, _ in producer.produced] == [b"a", b"b", b"c", b"b"]
