"""Kafka partition faults of the fault proxy, as pure logic: which service a connection belongs to, what a fault
request means, and when it expires. No I/O and no clock of its own (the clock is passed in), so it is tested
without sockets or sleeping. ``stack.local.proxy`` applies it to live connections.

How a connection is attributed to a service: every Kafka client's first request on a connection (ApiVersions,
with librdkafka) starts with the request header ``size int32, api_key int16, api_version int16,
correlation_id int32, client_id nullable string (int16 length)``. The proxy reads that one request before it
forwards anything, and maps ``client.id`` to a service by prefix (``SERVICE_PREFIXES``). The processor sets
``client.id`` to its replica name (``processor-N`` and ``processor-N-dlq``), each producer to its producer id
(``producer-<i>-<boot id>``). Anything else (the runner's admin client is ``rdkafka``) is ``other``, which a
partition never cuts.

Modes and what a client sees (measured on Tansu 0.6.0, see /work/shared/LOCAL-PARTS.md and docs/benchmarks.md):
- ``hold``: connections stay open, no byte is forwarded either way (the clean partition). Requests time out
  only after ``socket.timeout.ms``; a hold longer than ``session.timeout.ms`` costs a group rejoin after the heal.
- ``drop``: bytes are read and discarded. Clients wait for ``socket.timeout.ms`` (60 s by default) before they
  reconnect; producers without idempotence may duplicate.
- ``reset``: existing connections get a TCP RST, new ones are reset after their first request. Clients see
  errors at once and reconnect in a loop until the heal.
- ``latency``: every chunk is delayed by ``latency_ms`` in each direction.
- ``bandwidth``: each direction is capped at ``bandwidth_kbps`` kilobytes per second (pacing per chunk).
Packet *loss* is not offered: a TCP proxy can only lose whole byte ranges, which corrupts the Kafka stream
instead of simulating loss (the kernel would retransmit a lost segment); ``drop`` is the nearest honest fault.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

MODES = ("hold", "drop", "reset", "latency", "bandwidth")
SERVICES = ("processor", "producers")
"""Services a partition can cut: the Kafka clients of the CA3 stack."""
SERVICE_PREFIXES = (("processor", "processor"), ("producer", "producers"))
"""client.id prefix → service. The processor's replicas are processor-N (and processor-N-dlq)."""
OTHER = "other"
MAX_TTL_SECONDS = 3600.0
"""A partition is a drill, not a state: one hour is far beyond any experiment."""
MAX_LATENCY_MS = 60_000
MAX_FIRST_REQUEST_BYTES = 1 << 20
"""A first request (ApiVersions) is tens of bytes; anything this large is not Kafka."""


class PartitionRequestError(ValueError):
    """A bad partition request; the message names the field."""


@dataclass(frozen=True)
class RequestHeader:
    size: int
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def parse_request_header(frame: bytes) -> RequestHeader:
    """Parse the Kafka request header at the start of ``frame`` (which begins with the int32 size).

    Raises ValueError when the bytes are too short or not a plausible Kafka request header."""
    if len(frame) < 14:
        raise ValueError(f"a Kafka request header needs at least 14 bytes, got {len(frame)}")
    size, api_key, api_version, correlation_id, id_length = struct.unpack_from(">ihhih", frame, 0)
    if size < 10 or size > MAX_FIRST_REQUEST_BYTES:
        raise ValueError(f"request size {size} is not plausible for Kafka")
    if api_key < 0:
        raise ValueError(f"api_key {api_key} is negative")
    if id_length == -1:
        return RequestHeader(size, api_key, api_version, correlation_id, None)
    if id_length < -1 or 10 + id_length > size:
        raise ValueError(f"client_id length {id_length} does not fit in a request of {size} bytes")
    if len(frame) < 14 + id_length:
        raise ValueError(f"frame ends inside client_id: {len(frame)} bytes, need {14 + id_length}")
    client_id = frame[14:14 + id_length].decode("utf-8", errors="replace")
    return RequestHeader(size, api_key, api_version, correlation_id, client_id)


def service_of(client_id: str | None) -> str:
    """The stack service a Kafka ``client.id`` belongs to: ``processor``, ``producers`` or ``other``."""
    if client_id:
        for prefix, service in SERVICE_PREFIXES:
            if client_id.startswith(prefix):
                return service
    return OTHER


@dataclass(frozen=True)
class PartitionFault:
    between: frozenset[str]
    """Services cut from the broker."""
    mode: str
    ttl_seconds: float
    applied_at: float
    """Unix seconds when the proxy started applying it."""
    latency_ms: float = 0.0
    bandwidth_kbps: float = 0.0
    fault_id: int = field(default=0, compare=False)

    @property
    def expires_at(self) -> float:
        return self.applied_at + self.ttl_seconds

    def remaining(self, now: float) -> float:
        return self.expires_at - now

    def active(self, now: float) -> bool:
        return now < self.expires_at

    def applies_to(self, service: str, now: float) -> bool:
        return self.active(now) and service in self.between

    def describe(self, now: float) -> dict:
        body = {
            "kind": "kafka-partition", "between": sorted(self.between), "mode": self.mode,
            "ttl_seconds": self.ttl_seconds, "applied_at": self.applied_at, "expires_at": self.expires_at,
            "expires_in": round(max(0.0, self.remaining(now)), 3),
        }
        if self.mode == "latency":
            body["latency_ms"] = self.latency_ms
        if self.mode == "bandwidth":
            body["bandwidth_kbps"] = self.bandwidth_kbps
        return body


def _number(body: dict, name: str) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PartitionRequestError(f"{name}: must be a number, got {value!r}")
    return float(value)


def parse_partition(body: object, now: float) -> PartitionFault:
    """Validate a ``PUT /faults/kafka-partition`` body, e.g.
    ``{"between": ["processor"], "mode": "hold", "ttl_seconds": 30}``; ``latency_ms`` is required for mode
    ``latency``, ``bandwidth_kbps`` for ``bandwidth``. Raises PartitionRequestError naming the field."""
    if not isinstance(body, dict):
        raise PartitionRequestError(
            f'body must be a JSON object like {{"between": ["processor"], "mode": "hold", "ttl_seconds": 30}}, '
            f"got {body!r:.100}"
        )
    allowed = {"between", "mode", "ttl_seconds", "latency_ms", "bandwidth_kbps"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise PartitionRequestError(f"{unknown[0]}: unknown field (expected {', '.join(sorted(allowed))})")
    for required in ("between", "ttl_seconds"):
        if required not in body:
            raise PartitionRequestError(f"{required}: is required")
    between = body["between"]
    if isinstance(between, str):
        between = [between]
    if not isinstance(between, list) or not between or not all(isinstance(s, str) for s in between):
        raise PartitionRequestError(f"between: must be a non-empty list of services ({', '.join(SERVICES)}), "
                                    f"got {body['between']!r}")
    bad = [s for s in between if s not in SERVICES]
    if bad:
        raise PartitionRequestError(f"between: unknown service {bad[0]!r}; use {', '.join(SERVICES)}")
    mode = body.get("mode", "hold")
    if mode not in MODES:
        raise PartitionRequestError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    ttl = _number(body, "ttl_seconds")
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise PartitionRequestError(f"ttl_seconds: must be > 0 and <= {MAX_TTL_SECONDS:g}, got {body['ttl_seconds']!r}")
    latency = bandwidth = 0.0
    if mode == "latency":
        if "latency_ms" not in body:
            raise PartitionRequestError("latency_ms: is required for mode 'latency'")
        latency = _number(body, "latency_ms")
        if not 0 < latency <= MAX_LATENCY_MS:
            raise PartitionRequestError(f"latency_ms: must be > 0 and <= {MAX_LATENCY_MS}, got {body['latency_ms']!r}")
    elif "latency_ms" in body:
        raise PartitionRequestError(f"latency_ms: only applies to mode 'latency', not {mode!r}")
    if mode == "bandwidth":
        if "bandwidth_kbps" not in body:
            raise PartitionRequestError("bandwidth_kbps: is required for mode 'bandwidth'")
        bandwidth = _number(body, "bandwidth_kbps")
        if not bandwidth > 0:
            raise PartitionRequestError(f"bandwidth_kbps: must be > 0, got {body['bandwidth_kbps']!r}")
    elif "bandwidth_kbps" in body:
        raise PartitionRequestError(f"bandwidth_kbps: only applies to mode 'bandwidth', not {mode!r}")
    return PartitionFault(frozenset(between), mode, ttl, now, latency, bandwidth)


def chunk_delay(fault: PartitionFault | None, service: str, nbytes: int, now: float) -> float:
    """Seconds to wait before forwarding a chunk of ``nbytes`` for ``service`` under a partial fault."""
    if fault is None or not fault.applies_to(service, now):
        return 0.0
    if fault.mode == "latency":
        return fault.latency_ms / 1000.0
    if fault.mode == "bandwidth":
        return nbytes / (fault.bandwidth_kbps * 1000.0)
    return 0.0
