"""A stand-in for the processor's dead-letter producer, for tests that drive the consume loop without a broker
(this directory is on sys.path: it holds the root conftest.py)."""
from __future__ import annotations


class AckingProducer:
    """Records every dead letter as ``(topic, value, headers)`` and acknowledges it at ``flush``, as a broker that
    accepts everything would."""

    def __init__(self):
        self.produced: list[tuple[str, bytes | None, dict[str, bytes]]] = []
        self._callbacks = []

    def produce(self, topic, value, key, headers, on_delivery):
        self.produced.append((topic, value, dict(headers)))
        self._callbacks.append(on_delivery)

    def flush(self, _timeout):
        for callback in self._callbacks:
            callback(None, None)
        self._callbacks = []
        return 0
