"""Properties of the validator on generated events (hypothesis): it never raises anything but InvalidEvent, its
reasons stay in a bounded set, and every event it accepts is a document BSON can encode (so the store can hold it)."""
from __future__ import annotations

import json

import bson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_strategies import EDGE_INTS, REASON, raw_events, valid_events
from chaos_dr_stack.events import INT64_MAX, INT64_MIN, InvalidEvent, encode_event, parse_event
from chaos_dr_stack.processor.batching import Record, event_documents, gpu_latest_ops, plan_batch

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BATCH_SETTINGS = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""About 3,600 generated events (lists of 1-8); the database-backed property test pushes many more through the
real write path (tests/integration/test_poison_writes.py)."""
MAX_BSON = 16 * 1024 * 1024


def outcome(raw: bytes) -> str:
    """'ok', or the rejection reason; any other exception fails the test where it is raised."""
    try:
        parse_event(raw)
    except InvalidEvent as exc:
        assert REASON.fullmatch(exc.reason), f"reason {exc.reason!r} is outside the bounded set"
        assert len(exc.message) < 400 and exc.message.encode("utf-8")
        return exc.reason
    return "ok"


@BATCH_SETTINGS
@given(st.lists(raw_events(), min_size=1, max_size=8))
def test_parse_event_raises_only_invalid_event_and_what_it_accepts_is_storable(raws):
    records = [Record("token-events", 0, offset, raw) for offset, raw in enumerate(raws)]
    outcomes = [outcome(raw) for raw in raws]
    plan = plan_batch(records, consumed_at=1.0)
    assert len(plan.dead_letters) == sum(o != "ok" for o in outcomes)
    for doc in event_documents(plan, written_at=2.0):
        assert len(bson.encode(doc)) < MAX_BSON
    for op in gpu_latest_ops(plan, updated_at=2.0):
        bson.encode(op._doc)
        bson.encode(op._filter)


@PROPERTY_SETTINGS
@given(valid_events())
def test_every_valid_event_round_trips_through_the_wire_format(doc):
    event = parse_event(json.dumps(doc).encode())
    assert parse_event(encode_event(event)) == event
    bson.encode(event.to_doc())


@PROPERTY_SETTINGS
@given(valid_events(), st.sampled_from(EDGE_INTS), st.data())
def test_an_integer_outside_int64_is_out_of_range_in_every_numeric_field(doc, value, data):
    numeric = [f for f in ("seq", "produced_at", "utilization_pct", "memory_used_mb", "memory_total_mb",
                           "temperature_c", "power_w", "tokens_in", "tokens_out") if f in doc]
    name = data.draw(st.sampled_from(numeric))
    reason = outcome(json.dumps({**doc, name: value}).encode())
    if not INT64_MIN <= value <= INT64_MAX:
        assert reason == f"out_of_range:{name}"
    else:
        assert reason in ("ok", f"out_of_range:{name}")


@pytest.mark.parametrize(("text", "reason"), [
    ('"\\ud800"', "bad_format:model"),  # a lone surrogate: valid JSON, not encodable UTF-8
    ('"a\\udfffb"', "bad_format:model"),
    ('"\\ud83d\\ude00"', "ok"),  # a surrogate pair is one character
    ('"nul\\u0000"', "bad_format:model"),
    ('"tab\\t"', "bad_format:model"),
    ('""', "bad_format:model"),
    ('"' + "m" * 128 + '"', "ok"),
    ('"' + "m" * 129 + '"', "bad_format:model"),
    ('"\\u00e9t\\u00e9"', "ok"),
])
def test_model_is_bounded_encodable_text(text, reason):
    raw = ('{"producer_id":"p","seq":1,"produced_at":1.5,"kind":"token","model":' + text
           + ',"tokens_in":1,"tokens_out":2}').encode()
    assert outcome(raw) == reason
