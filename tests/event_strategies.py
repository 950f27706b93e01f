"""Hypothesis strategies for raw Kafka event values, valid and malformed, shared by the unit and the
integration property tests (this directory is on sys.path: it holds the root conftest.py).

``raw_events(prefix)`` draws one message value: a valid event, whose ``producer_id`` starts with ``prefix`` (so a
test can give each example its own keys); the same with one field broken (a huge or negative int, a non-finite or
overflowing float, a lone surrogate, NUL, a long string, a wrong type) or missing; an event with a number spelt in
raw JSON (``1e999``, 400 digits); or bytes that are not an event at all.
"""
from __future__ import annotations

import json
import re

from hypothesis import strategies as st

from chaos_dr_stack.events import INT64_MAX, INT64_MIN, MODEL_MAX_LENGTH

GPU_IDS = ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]
REASON = re.compile(
    r"bad_json|not_object|unknown_kind|(missing_field|wrong_type|out_of_range|bad_format):"
    r"(producer_id|seq|produced_at|kind|gpu_id|utilization_pct|memory_used_mb|memory_total_mb|temperature_c|power_w"
    r"|model|tokens_in|tokens_out)"
)
"""Every reason ``parse_event`` may give: a bounded set, because it is a metric label."""

EDGE_INTS = [0, 1, -1, INT64_MAX, INT64_MAX + 1, INT64_MIN, INT64_MIN - 1, 2**64, 2**64 + 1, -(2**64), 10**308,
             10**309, 10**400, -(10**400), 2**1024, 2**53 + 1]
EDGE_FLOATS = [0.0, -0.0, 5e-324, 1e-300, 1.7976931348623157e308, -1.7976931348623157e308, 1e16, 100.0000001]

model_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=MODEL_MAX_LENGTH
)
"""Valid model names: any encodable character but control ones; up to the limit."""
ids = st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False)
non_negative = st.one_of(st.floats(min_value=0, max_value=1e300), st.integers(0, INT64_MAX))


@st.composite
def valid_events(draw, prefix: str = "p") -> dict:
    common = {
        "producer_id": f"{prefix}-{draw(ids)}"[:64],
        "seq": draw(st.one_of(st.integers(1, 1000), st.sampled_from([1, INT64_MAX]), st.integers(1, INT64_MAX))),
        "produced_at": draw(st.one_of(st.floats(min_value=1e-300, max_value=1e12), st.integers(1, INT64_MAX))),
    }
    if draw(st.booleans()):
        return {**common, "kind": "gpu", "gpu_id": draw(st.sampled_from(GPU_IDS)),
                "utilization_pct": draw(st.one_of(st.floats(0, 100), st.integers(0, 100))),
                "memory_used_mb": draw(non_negative),
                "memory_total_mb": draw(st.one_of(st.floats(min_value=1e-300, max_value=1e300), st.integers(1, INT64_MAX))),
                "temperature_c": draw(st.one_of(finite, st.integers(INT64_MIN, INT64_MAX))),
                "power_w": draw(non_negative)}
    return {**common, "kind": "token", "model": draw(model_names),
            "tokens_in": draw(st.integers(0, INT64_MAX)), "tokens_out": draw(st.integers(0, INT64_MAX))}


NASTY_VALUES = st.one_of(
    st.sampled_from(EDGE_INTS),
    st.sampled_from(EDGE_FLOATS),
    st.integers(),
    st.floats(),  # nan and inf included: json.dumps writes NaN/Infinity, which the parser must refuse
    st.text(max_size=40),  # lone surrogates included
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "x\x00y", "m" * (MODEL_MAX_LENGTH + 1), "m" * 100_000, "",
                     "\u202e", "💥", "gpu", "token"]),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
FIELDS = ["producer_id", "seq", "produced_at", "kind", "gpu_id", "utilization_pct", "memory_used_mb",
          "memory_total_mb", "temperature_c", "power_w", "model", "tokens_in", "tokens_out"]


@st.composite
def broken_events(draw, prefix: str = "p") -> dict:
    """A valid event with one field replaced by a nasty value, or removed."""
    event = draw(valid_events(prefix))
    name = draw(st.sampled_from([f for f in FIELDS if f in event]))
    if draw(st.integers(0, 9)) == 0:
        del event[name]
    else:
        event[name] = draw(NASTY_VALUES)
    return event


def _dumps(event: dict) -> bytes:
    # ensure_ascii (the default) writes a lone surrogate as the escape \\ud800: valid JSON that decodes to it.
    return json.dumps(event).encode()


def _raw_text(event: dict, field: str, text: str) -> bytes:
    """The event with ``field`` spelt as raw JSON text (numbers json.dumps cannot write, like 1e999)."""
    doc = json.dumps({**event, field: "__RAW__"})
    return doc.replace('"__RAW__"', text).encode()


@st.composite
def raw_text_events(draw, prefix: str = "p") -> bytes:
    event = draw(valid_events(prefix))
    field = draw(st.sampled_from([f for f in FIELDS if f in event and f not in ("producer_id", "kind", "gpu_id", "model")]))
    text = draw(st.sampled_from(["1e999", "-1e999", "1e-999", "9" * 400, "-" + "9" * 30, "1.0e308", "0.0", "-0",
                                 "NaN", "Infinity", "-Infinity", "1E+2", "9" * 5000, "1" + "0" * 19]))
    return _raw_text(event, field, text)


garbage = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"{", b"[]", b"null", b"1", b'"s"', b"\xff\xfe{}", b"\xef\xbb\xbf{}", b"{}" * 3,
                     b'{"kind":"gpu"}', b"[" * 5000, b'{"a":' * 2000]),
)


def raw_events(prefix: str = "p") -> st.SearchStrategy[bytes]:
    """One Kafka message value: half of them valid events, the rest broken events and garbage."""
    return st.one_of(
        valid_events(prefix).map(_dumps),
        st.one_of(broken_events(prefix).map(_dumps), raw_text_events(prefix), garbage),
    )
