"""The Kafka partition fault's pure parts: request-header parsing, request validation, TTL expiry, and the
failover measurement over write times. No sockets, no sleeping: clocks are passed in."""
from __future__ import annotations

import re
import struct

import pytest

from chaoslib_ext.actions.network import _validate
from chaoslib_ext.errors import InvalidArgument
from probes.measure import failover_seconds, partition_resumed_at, share_within
from chaos_dr_stack.local.partition import (
    PartitionRequestError,
    chunk_delay,
    parse_partition,
    parse_request_header,
    service_of,
)


def kafka_request(client_id: str | None, api_key: int = 18, api_version: int = 3, correlation_id: int = 1,
                  body: bytes = b"\x00") -> bytes:
    cid = b"\xff\xff" if client_id is None else struct.pack(">h", len(client_id.encode())) + client_id.encode()
    payload = struct.pack(">hhi", api_key, api_version, correlation_id) + cid + body
    return struct.pack(">i", len(payload)) + payload


def test_header_of_an_api_versions_request_is_parsed():
    header = parse_request_header(kafka_request("processor-1", correlation_id=7))
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (18, 3, 7, "processor-1")


def test_null_client_id_is_none_and_other():
    header = parse_request_header(kafka_request(None))
    assert header.client_id is None
    assert service_of(header.client_id) == "other"


@pytest.mark.parametrize("frame, message", [
    (b"\x00\x00", "at least 14 bytes"),
    (struct.pack(">ihhih", 5, 18, 3, 1, 0), "not plausible"),
    (struct.pack(">ihhih", 20, -1, 3, 1, 0), "negative"),
    (struct.pack(">ihhih", 12, 18, 3, 1, 50), "does not fit"),
    (struct.pack(">ihhih", 60, 18, 3, 1, 40) + b"abc", "ends inside client_id"),
])
def test_malformed_headers_are_refused(frame, message):
    with pytest.raises(ValueError, match=message):
        parse_request_header(frame)


@pytest.mark.parametrize("client_id, service", [
    ("processor-0", "processor"), ("processor-1-dlq", "processor"), ("producer-0-ab12", "producers"),
    ("rdkafka", "other"), ("", "other"),
    ("broker-2-fetcher-0", "kafka-2"), ("raft-client-3", "kafka-3"),
    ("broker-1-to-controller-heartbeat-channel-manager", "kafka-1"), ("raft-client-x", "other"),
    # a node's channels to the active controller (heartbeats, AlterPartition) send its bare node id
    ("2", "kafka-2"), ("12", "kafka-12"), ("2a", "other"), ("-1", "other"),
])
def test_client_ids_map_to_services(client_id, service):
    assert service_of(client_id) == service


def test_a_valid_partition_request():
    fault = parse_partition({"between": ["processor"], "mode": "hold", "ttl_seconds": 30}, now=1000.0)
    assert fault.between == frozenset({"processor"}) and fault.mode == "hold"
    assert fault.expires_at == 1030.0


@pytest.mark.parametrize("body, message", [
    (None, "body must be a JSON object"),
    ({"between": ["processor"]}, "ttl_seconds: is required"),
    ({"ttl_seconds": 5}, "between: is required (or isolate, or links"),
    ({"between": ["kafka-1"], "ttl_seconds": 5}, "to cut brokers from each other use isolate or links"),
    ({"isolate": "kafka-4", "ttl_seconds": 5}, "isolate: unknown Kafka node 'kafka-4'; this cluster has kafka-1, kafka-2, kafka-3"),
    ({"links": [["kafka-1", "kafka-9"]], "ttl_seconds": 5}, "links: unknown Kafka node 'kafka-9'"),
    ({"links": [["kafka-1", "kafka-1"]], "ttl_seconds": 5}, "joins a node to itself"),
    ({"links": [["kafka-1"]], "ttl_seconds": 5}, "each link is a pair of nodes"),
    ({"links": "kafka-1", "ttl_seconds": 5}, "links: must be a non-empty list of node pairs"),
    ({"between": [], "ttl_seconds": 5}, "between: must be a non-empty list"),
    ({"between": ["kafka"], "ttl_seconds": 5}, "between: unknown service 'kafka'"),
    ({"between": ["processor"], "ttl_seconds": 5, "mode": "cut"}, "mode: must be one of"),
    ({"between": ["processor"], "ttl_seconds": 0}, "ttl_seconds: must be > 0"),
    ({"between": ["processor"], "ttl_seconds": 99999}, "ttl_seconds: must be > 0 and <= 3600"),
    ({"between": ["processor"], "ttl_seconds": True}, "ttl_seconds: must be a number"),
    ({"between": ["processor"], "ttl_seconds": 5, "mode": "latency"}, "latency_ms: is required"),
    ({"between": ["processor"], "ttl_seconds": 5, "latency_ms": 10}, "latency_ms: only applies"),
    ({"between": ["processor"], "ttl_seconds": 5, "mode": "bandwidth", "bandwidth_kbps": 0}, "bandwidth_kbps: must be > 0"),
    ({"between": ["processor"], "ttl_seconds": 5, "extra": 1}, "extra: unknown field"),
])
def test_bad_partition_requests_name_the_field(body, message):
    with pytest.raises(PartitionRequestError, match=re.escape(message)):
        parse_partition(body, now=0.0, brokers=3)


def test_isolating_the_only_node_is_refused():
    with pytest.raises(PartitionRequestError, match="no other node to be cut from on a one-node cluster"):
        parse_partition({"isolate": "kafka-1", "ttl_seconds": 5}, now=0.0, brokers=1)


def test_an_isolated_node_loses_its_peers_but_not_its_clients():
    fault = parse_partition({"isolate": "kafka-2", "ttl_seconds": 30}, now=0.0, brokers=3)
    assert fault.applies_to("kafka-1", "kafka-2", 1.0) and fault.applies_to("kafka-2", "kafka-3", 1.0)
    assert fault.applies_to("kafka-2", "kafka-1", 1.0)
    assert not fault.applies_to("kafka-1", "kafka-3", 1.0)
    assert not fault.applies_to("kafka-2", "kafka-2", 1.0)  # its own quorum client reaching itself
    assert not fault.applies_to("processor", "kafka-2", 1.0) and not fault.applies_to("producers", "kafka-2", 1.0)
    described = fault.describe(1.0)
    assert described["isolate"] == "kafka-2"
    assert described["links"] == [["kafka-1", "kafka-2"], ["kafka-2", "kafka-3"]]
    assert described["between"] == []


def test_one_link_is_cut_both_ways_and_can_be_combined_with_services():
    fault = parse_partition({"links": [["kafka-3", "kafka-1"]], "between": ["producers"], "mode": "reset",
                             "ttl_seconds": 30}, now=0.0, brokers=3)
    assert fault.applies_to("kafka-1", "kafka-3", 1.0) and fault.applies_to("kafka-3", "kafka-1", 1.0)
    assert not fault.applies_to("kafka-2", "kafka-1", 1.0)
    assert fault.applies_to("producers", "kafka-2", 1.0) and not fault.applies_to("processor", "kafka-2", 1.0)
    assert not fault.applies_to("kafka-1", "kafka-3", 30.0)


def test_a_fault_expires_at_its_ttl_with_an_injected_clock():
    fault = parse_partition({"between": ["producers"], "mode": "drop", "ttl_seconds": 2.5}, now=100.0)
    assert fault.applies_to("producers", "kafka-1", 102.49)
    assert not fault.applies_to("processor", "kafka-1", 101.0)
    assert not fault.applies_to("producers", "kafka-1", 102.5)
    assert fault.describe(101.0)["expires_in"] == 1.5
    assert fault.describe(200.0)["expires_in"] == 0.0


def test_partial_faults_delay_chunks_only_while_active():
    latency = parse_partition({"between": ["processor"], "mode": "latency", "latency_ms": 250, "ttl_seconds": 10}, 0.0)
    assert chunk_delay(latency, "processor", "kafka-1", 100, 5.0) == 0.25
    assert chunk_delay(latency, "processor", "kafka-1", 100, 10.0) == 0.0
    assert chunk_delay(latency, "producers", "kafka-1", 100, 5.0) == 0.0
    capped = parse_partition({"between": ["processor"], "mode": "bandwidth", "bandwidth_kbps": 100, "ttl_seconds": 10}, 0.0)
    assert chunk_delay(capped, "processor", "kafka-1", 50_000, 1.0) == 0.5
    assert chunk_delay(None, "processor", "kafka-1", 50_000, 1.0) == 0.0
    slow_link = parse_partition({"links": [["kafka-1", "kafka-2"]], "mode": "latency", "latency_ms": 100,
                                 "ttl_seconds": 10}, 0.0, brokers=2)
    assert chunk_delay(slow_link, "kafka-2", "kafka-1", 10, 1.0) == 0.1
    assert chunk_delay(slow_link, "processor", "kafka-1", 10, 1.0) == 0.0


@pytest.mark.parametrize("kwargs, message", [
    ({"between": "nobody"}, "not one of processor, producers"),
    ({"between": []}, "non-empty list"),
    ({"ttl_seconds": 0}, "ttl_seconds must be a number > 0 and <= 3600, got 0"),
    ({"ttl_seconds": "30"}, "ttl_seconds must be a number > 0 and <= 3600, got '30'"),
    ({"mode": "cut"}, "mode 'cut' is not one of"),
    ({"mode": "latency"}, "latency_ms must be a number > 0, got None"),
    ({"latency_ms": 5}, "latency_ms only applies to mode 'latency'"),
])
def test_partition_action_validates_before_any_side_effect(kwargs, message):
    args = {"between": ["processor"], "ttl_seconds": 30, "mode": "hold", "latency_ms": None, "bandwidth_kbps": None}
    args.update(kwargs)
    with pytest.raises(InvalidArgument, match=message):
        _validate(**args)


def test_a_partition_that_never_stalled_resumes_at_its_first_write_after_the_fault():
    writes = [9.6, 9.8, 10.05, 10.25, 10.45, 10.65, 10.85, 11.05, 11.25]
    assert partition_resumed_at(writes, fault_at=10.0, gap_seconds=1.0) == (10.05, 0.0)


def test_a_stalled_partition_resumes_after_its_gap():
    writes = [9.7, 9.9, 10.1, 15.3, 15.5]  # the dying replica's in-flight batch at 10.1, then 5.2 s of nothing
    resumed_at, stall = partition_resumed_at(writes, fault_at=10.0, gap_seconds=1.0)
    assert resumed_at == 15.3 and stall == pytest.approx(5.2)


def test_undecided_while_the_gap_is_still_open_or_nothing_was_written():
    assert partition_resumed_at([9.8, 10.1], fault_at=10.0, gap_seconds=1.0) is None
    assert partition_resumed_at([], fault_at=10.0, gap_seconds=1.0) is None


def test_failover_is_the_last_partition_to_resume():
    assert failover_seconds(10.0, {"a/0": (10.1, 0.0), "a/1": (18.4, 8.1)}) == pytest.approx(8.4)
    assert failover_seconds(10.0, {"a/0": (10.1, 0.0), "a/1": None}) is None
    assert failover_seconds(10.0, {}) is None


def test_share_within_budget():
    assert share_within([0.1, 0.2, 12.0, 9.99], 10.0) == 0.75
    assert share_within([], 10.0) is None
