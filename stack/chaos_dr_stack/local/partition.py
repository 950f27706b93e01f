"""Kafka partition faults of the fault proxy, as pure logic: which service a connection belongs to, what a fault
request means, and when it expires. No I/O and no clock of its own (the clock is passed in), so it is tested
without sockets or sleeping. ``chaos_dr_stack.local.proxy`` applies it to live connections.

How a connection is attributed to a service: every Kafka client's first request on a connection (ApiVersions,
with librdkafka) starts with the request header ``size int32, api_key int16, api_version int16,
correlation_id int32, client_id nullable string (int16 length)``. The proxy reads that one request before it
forwards anything, and maps ``client.id`` to a source by prefix (``SERVICE_PREFIXES``). The processor sets
``client.id`` to its replica name (``processor-N`` and ``processor-N-dlq``), each producer to its producer id
(``producer-<i>-<boot id>``). Apache Kafka's own clients name their node (``BROKER_CLIENT_IDS``): a follower's
replica fetcher, the KRaft quorum client and the broker's channels to the controller (the bare node id), so a
connection between two nodes is attributed to the node that opened it, and the proxy route it came through names
the other end.
Anything else (the runner's admin client is ``rdkafka``) is ``other``, which a partition never cuts.

What a fault cuts: the services in ``between`` from every node, and each broker↔broker link in ``links`` in
both directions (replication and quorum traffic alike). ``isolate: kafka-N`` is shorthand for every link of
node N: the other nodes lose it, while clients still reach it.

Modes and what a client sees (see docs/benchmarks.md and tests/integration/test_kafka_partition.py):
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
import re
import struct
from dataclasses import dataclass, field

from chaos_dr_stack.fault_limits import MAX_FAULT_TTL_SECONDS

MODES = ("hold", "drop", "reset", "latency", "bandwidth")
SERVICES = ("processor", "producers")
"""Services a partition can cut: the Kafka clients of the CA3 stack."""
SERVICE_PREFIXES = (("processor", "processor"), ("producer", "producers"))
"""client.id prefix → service. The processor's replicas are processor-N (and processor-N-dlq)."""
OTHER = "other"
BROKER_CLIENT_IDS = (
    re.compile(r"^broker-(\d+)-"),       # broker-N-fetcher-K: replication
    re.compile(r"^raft-client-(\d+)$"),  # the KRaft quorum client of node N
    # A node's channels to the active controller (heartbeats, AlterPartition, forwarding, controller registration)
    # send the node id alone: NodeToControllerChannelManager's client.id. Their thread is named
    # broker-N-to-controller-…, which is easy to mistake for the client id; missing them left a cut node
    # heartbeating, so the controller never fenced it.
    re.compile(r"^(\d+)$"),
)
"""Apache Kafka's inter-node clients, each with the id of the node that runs it."""
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


def node_name(node_id: int) -> str:
    return f"kafka-{node_id}"


def service_of(client_id: str | None) -> str:
    """Who opened a connection, from its Kafka ``client.id``: ``processor``, ``producers``, ``kafka-N`` (a
    node of the cluster) or ``other``."""
    if client_id:
        for prefix, service in SERVICE_PREFIXES:
            if client_id.startswith(prefix):
                return service
        for pattern in BROKER_CLIENT_IDS:
            if matched := pattern.match(client_id):
                return node_name(int(matched.group(1)))
    return OTHER


@dataclass(frozen=True)
class PartitionFault:
    between: frozenset[str]
    """Services cut from every node."""
    mode: str
    ttl_seconds: float
    applied_at: float
    """Unix seconds when the proxy started applying it."""
    latency_ms: float = 0.0
    bandwidth_kbps: float = 0.0
    links: frozenset[frozenset[str]] = frozenset()
    """Broker↔broker links cut in both directions, each a pair of node names."""
    isolated: str | None = None
    """The node whose every link is in ``links``, when the fault was asked for as ``isolate``."""
    fault_id: int = field(default=0, compare=False)

    @property
    def expires_at(self) -> float:
        return self.applied_at + self.ttl_seconds

    def remaining(self, now: float) -> float:
        return self.expires_at - now

    def active(self, now: float) -> bool:
        return now < self.expires_at

    def cuts(self, source: str, destination: str) -> bool:
        """Whether a connection from ``source`` to node ``destination`` is cut (ignoring the TTL)."""
        return source in self.between or frozenset((source, destination)) in self.links

    def applies_to(self, source: str, destination: str, now: float) -> bool:
        return self.active(now) and self.cuts(source, destination)

    def describe(self, now: float) -> dict:
        body = {
            "kind": "kafka-partition", "between": sorted(self.between), "mode": self.mode,
            "ttl_seconds": self.ttl_seconds, "applied_at": self.applied_at, "expires_at": self.expires_at,
            "expires_in": round(max(0.0, self.remaining(now)), 3),
        }
        if self.links:
            body["links"] = sorted(sorted(link) for link in self.links)
        if self.isolated:
            body["isolate"] = self.isolated
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


def parse_partition(body: object, now: float, brokers: int = 1) -> PartitionFault:
    """Validate a ``PUT /faults/kafka-partition`` body on a cluster of ``brokers`` nodes, e.g.
    ``{"between": ["processor"], "mode": "hold", "ttl_seconds": 30}`` (services cut from every node),
    ``{"isolate": "kafka-2", "ttl_seconds": 30}`` (node 2 cut from the other nodes, not from clients) or
    ``{"links": [["kafka-1", "kafka-3"]], "ttl_seconds": 30}`` (one link). One fault may combine them.
    ``latency_ms`` is required for mode ``latency``, ``bandwidth_kbps`` for ``bandwidth``. Raises
    PartitionRequestError naming the field."""
    if not isinstance(body, dict):
        raise PartitionRequestError(
            f'body must be a JSON object like {{"between": ["processor"], "mode": "hold", "ttl_seconds": 30}}, '
            f"got {body!r:.100}"
        )
    allowed = {"between", "isolate", "links", "mode", "ttl_seconds", "latency_ms", "bandwidth_kbps"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise PartitionRequestError(f"{unknown[0]}: unknown field (expected {', '.join(sorted(allowed))})")
    if not {"between", "isolate", "links"} & set(body):
        raise PartitionRequestError("between: is required (or isolate, or links: what the partition cuts)")
    if "ttl_seconds" not in body:
        raise PartitionRequestError("ttl_seconds: is required")
    between = _parse_between(body["between"]) if "between" in body else frozenset()
    nodes = [node_name(n) for n in range(1, brokers + 1)]
    links: set[frozenset[str]] = set()
    isolated = None
    if "isolate" in body:
        isolated = body["isolate"]
        _check_node("isolate", isolated, nodes)
        if brokers < 2:
            raise PartitionRequestError(f"isolate: {isolated!r} has no other node to be cut from on a "
                                        f"one-node cluster (start the stack with --kafka-brokers 3)")
        links |= {frozenset((isolated, other)) for other in nodes if other != isolated}
    if "links" in body:
        links |= _parse_links(body["links"], nodes)
    mode = body.get("mode", "hold")
    if mode not in MODES:
        raise PartitionRequestError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    ttl = _number(body, "ttl_seconds")
    if not 0 < ttl <= MAX_FAULT_TTL_SECONDS:
        raise PartitionRequestError(f"ttl_seconds: must be > 0 and <= {MAX_FAULT_TTL_SECONDS:g}, got {body['ttl_seconds']!r}")
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
    return PartitionFault(between, mode, ttl, now, latency, bandwidth, frozenset(links), isolated)


def _parse_between(between: object) -> frozenset[str]:
    if isinstance(between, str):
        between = [between]
    if not isinstance(between, list) or not between or not all(isinstance(s, str) for s in between):
        raise PartitionRequestError(f"between: must be a non-empty list of services ({', '.join(SERVICES)}), "
                                    f"got {between!r}")
    bad = [s for s in between if s not in SERVICES]
    if bad:
        hint = "; to cut brokers from each other use isolate or links" if bad[0].startswith("kafka") else ""
        raise PartitionRequestError(f"between: unknown service {bad[0]!r}; use {', '.join(SERVICES)}{hint}")
    return frozenset(between)


def _check_node(field_name: str, node: object, nodes: list[str]) -> None:
    if node not in nodes:
        raise PartitionRequestError(f"{field_name}: unknown Kafka node {node!r}; this cluster has "
                                    f"{', '.join(nodes)}")


def _parse_links(links: object, nodes: list[str]) -> set[frozenset[str]]:
    example = '[["kafka-1", "kafka-2"]]'
    if not isinstance(links, list) or not links:
        raise PartitionRequestError(f"links: must be a non-empty list of node pairs like {example}, got {links!r}")
    parsed = set()
    for link in links:
        if not isinstance(link, list) or len(link) != 2:
            raise PartitionRequestError(f"links: each link is a pair of nodes like {example}, got {link!r}")
        for node in link:
            _check_node("links", node, nodes)
        if link[0] == link[1]:
            raise PartitionRequestError(f"links: {link!r} joins a node to itself; a link is between two nodes")
        parsed.add(frozenset(link))
    return parsed


def chunk_delay(fault: PartitionFault | None, source: str, destination: str, nbytes: int, now: float) -> float:
    """Seconds to wait before forwarding a chunk of ``nbytes`` from ``source`` to ``destination`` under a partial
    fault."""
    if fault is None or not fault.applies_to(source, destination, now):
        return 0.0
    if fault.mode == "latency":
        return fault.latency_ms / 1000.0
    if fault.mode == "bandwidth":
        return nbytes / (fault.bandwidth_kbps * 1000.0)
    return 0.0
