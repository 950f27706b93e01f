import json

import pytest

from chaos_dr_stack.events import (
    GpuEvent,
    InvalidEvent,
    TokenEvent,
    encode_event,
    event_key,
    gpu_event,
    parse_event,
    token_event,
    valid_id,
)

GPU = {
    "producer_id": "producer-0-abc",
    "seq": 7,
    "produced_at": 1700000000.25,
    "kind": "gpu",
    "gpu_id": "gpu-1",
    "utilization_pct": 55.5,
    "memory_used_mb": 1024,
    "memory_total_mb": 81920,
    "temperature_c": 61.0,
    "power_w": 300.0,
}
TOKEN = {
    "producer_id": "producer-0-abc",
    "seq": 8,
    "produced_at": 1700000000.5,
    "kind": "token",
    "model": "llama-3-8b",
    "tokens_in": 100,
    "tokens_out": 20,
}


def raw(base: dict, **changes) -> bytes:
    doc = {**base, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_valid_gpu_event_parses_to_typed_event():
    event = parse_event(raw(GPU))
    assert isinstance(event, GpuEvent)
    assert (event.producer_id, event.seq, event.gpu_id, event.utilization_pct) == ("producer-0-abc", 7, "gpu-1", 55.5)
    assert event.key == "producer-0-abc:7"
    assert event.to_doc() == GPU


def test_valid_token_event_parses_to_typed_event():
    event = parse_event(raw(TOKEN))
    assert isinstance(event, TokenEvent)
    assert (event.model, event.tokens_in, event.tokens_out) == ("llama-3-8b", 100, 20)
    assert event.to_doc() == TOKEN


def test_integer_timestamp_is_accepted_as_float():
    event = parse_event(raw(GPU, produced_at=1700000000))
    assert event.produced_at == 1700000000.0 and isinstance(event.produced_at, float)


def test_boundaries_are_inclusive_where_the_contract_says_so():
    assert parse_event(raw(GPU, utilization_pct=0, memory_used_mb=0, power_w=0)).utilization_pct == 0
    assert parse_event(raw(GPU, utilization_pct=100)).utilization_pct == 100
    assert parse_event(raw(TOKEN, tokens_in=0, tokens_out=0)).tokens_in == 0
    assert parse_event(raw(GPU, seq=1)).seq == 1


def test_unknown_extra_fields_are_ignored():
    assert parse_event(raw(GPU, extra="x")).to_doc() == GPU


@pytest.mark.parametrize(
    ("payload", "reason", "in_message"),
    [
        (b"", "bad_json", "empty"),
        (b"{not json", "bad_json", "JSON"),
        (b"\xff\xfe{}", "bad_json", "UTF-8"),
        (b'{"seq": NaN}', "bad_json", "NaN"),
        (b"[1, 2]", "not_object", "list"),
        (raw(GPU, seq=...), "missing_field:seq", "'seq'"),
        (raw(GPU, seq=None), "missing_field:seq", "'seq'"),
        (raw(GPU, producer_id=...), "missing_field:producer_id", "'producer_id'"),
        (raw(GPU, kind=...), "missing_field:kind", "'kind'"),
        (raw(GPU, gpu_id=...), "missing_field:gpu_id", "'gpu_id'"),
        (raw(TOKEN, model=...), "missing_field:model", "'model'"),
        (raw(GPU, seq="7"), "wrong_type:seq", "str"),
        (raw(GPU, seq=7.5), "wrong_type:seq", "float"),
        (raw(GPU, seq=True), "wrong_type:seq", "bool"),
        (raw(GPU, produced_at="now"), "wrong_type:produced_at", "str"),
        (raw(GPU, utilization_pct=[1]), "wrong_type:utilization_pct", "list"),
        (raw(GPU, producer_id=5), "wrong_type:producer_id", "int"),
        (raw(TOKEN, tokens_in=1.5), "wrong_type:tokens_in", "float"),
        (raw(TOKEN, model=3), "wrong_type:model", "int"),
        (raw(GPU, seq=0), "out_of_range:seq", "got 0"),
        (raw(GPU, produced_at=0), "out_of_range:produced_at", "got 0.0"),
        (raw(GPU, utilization_pct=100.5), "out_of_range:utilization_pct", "got 100.5"),
        (raw(GPU, utilization_pct=-1), "out_of_range:utilization_pct", "got -1"),
        (raw(GPU, memory_used_mb=-0.1), "out_of_range:memory_used_mb", "got -0.1"),
        (raw(GPU, memory_total_mb=0), "out_of_range:memory_total_mb", "> 0"),
        (raw(GPU, power_w=-5), "out_of_range:power_w", "got -5"),
        (raw(TOKEN, tokens_out=-1), "out_of_range:tokens_out", "got -1"),
        (raw(GPU, seq=2**63), "out_of_range:seq", "signed 64-bit"),
        (raw(GPU, seq=10**400), "out_of_range:seq", "characters)"),
        (raw(TOKEN, tokens_in=2**64), "out_of_range:tokens_in", "got 18446744073709551616"),
        (raw(TOKEN, tokens_out=-(2**63) - 1), "out_of_range:tokens_out", "signed 64-bit"),
        (raw(GPU, produced_at=10**400), "out_of_range:produced_at", "signed 64-bit"),
        (raw(GPU, temperature_c=-(10**400)), "out_of_range:temperature_c", "signed 64-bit"),
        (raw(GPU, memory_used_mb=2**63), "out_of_range:memory_used_mb", "signed 64-bit"),
        (b'{"producer_id":"p","seq":1,"produced_at":1e999,"kind":"gpu"}', "out_of_range:produced_at", "finite"),
        (raw(TOKEN, model="\ud800"), "bad_format:model", "UTF-8"),
        (raw(TOKEN, model="m" * 129), "bad_format:model", "1-128 characters, got 129"),
        (raw(TOKEN, model="a\x00b"), "bad_format:model", "control characters"),
        (raw(GPU, kind="cpu"), "unknown_kind", "'cpu'"),
        (raw(GPU, producer_id="has space"), "bad_format:producer_id", "'has space'"),
        (raw(GPU, producer_id="x" * 65), "bad_format:producer_id", "1-64"),
        (raw(GPU, gpu_id=""), "bad_format:gpu_id", "''"),
    ],
)
def test_each_invalid_event_is_rejected_with_its_reason(payload, reason, in_message):
    with pytest.raises(InvalidEvent) as info:
        parse_event(payload)
    assert info.value.reason == reason
    assert in_message in info.value.message
    assert str(info.value).startswith(f"{reason}: ")


def test_none_value_is_bad_json():
    with pytest.raises(InvalidEvent) as info:
        parse_event(None)
    assert info.value.reason == "bad_json"


def test_event_key_joins_producer_and_seq():
    assert event_key("producer-1-deadbeef", 42) == "producer-1-deadbeef:42"


def test_constructors_round_trip_through_the_wire_format():
    gpu = gpu_event("p-1", 3, "gpu-0", produced_at=1.5, utilization_pct=10.0, memory_used_mb=1.0,
                    memory_total_mb=2.0, temperature_c=40.0, power_w=100.0)
    token = token_event("p-1", 4, "m", produced_at=2.5, tokens_in=3, tokens_out=4)
    assert parse_event(encode_event(gpu)) == gpu
    assert parse_event(encode_event(token)) == token
    assert json.loads(encode_event(gpu))["kind"] == "gpu"


@pytest.mark.parametrize(("value", "ok"), [("gpu-0", True), ("a:b.c_d-e", True), ("x" * 64, True), ("", False),
                                           ("x" * 65, False), ("gpu 0", False), ("gpu/0", False), (7, False)])
def test_valid_id(value, ok):
    assert valid_id(value) is ok
