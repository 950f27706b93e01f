"""The CA3 event format: validation, idempotency key and constructors (see docs/local-stack-contract.md).

Pure code: no I/O, so the processor, the producers and the tests share one definition of a valid event.
Every rejection carries a short machine ``reason`` (used as a metric label and as the ``dlq-reason``
header, so the set of reasons is bounded) and a human message.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "ID_PATTERN",
    "INT64_MAX",
    "INT64_MIN",
    "MODEL_MAX_LENGTH",
    "Event",
    "GpuEvent",
    "InvalidEvent",
    "TokenEvent",
    "encode_event",
    "event_key",
    "gpu_event",
    "parse_event",
    "token_event",
    "valid_id",
]

ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""Charset of producer and GPU ids: safe in a Mongo ``_id``, a Kafka key and a URL query."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""BSON stores integers as signed 64-bit at most: a JSON integer outside this range passes ``json.loads`` and then
fails the Mongo write (``OverflowError``), so validation rejects it first."""

MODEL_MAX_LENGTH = 128
"""Characters of ``model``. Real model names are under 64 (``meta-llama/Llama-3-70b-chat-hf`` is 30); 128 leaves
room and keeps every event document far below the 16 MB BSON limit."""


class InvalidEvent(ValueError):
    """A message that is not a valid event. ``reason`` is short and machine-readable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class GpuEvent:
    producer_id: str
    seq: int
    produced_at: float
    gpu_id: str
    utilization_pct: float
    memory_used_mb: float
    memory_total_mb: float
    temperature_c: float
    power_w: float
    kind: Literal["gpu"] = "gpu"

    @property
    def key(self) -> str:
        return event_key(self.producer_id, self.seq)

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TokenEvent:
    producer_id: str
    seq: int
    produced_at: float
    model: str
    tokens_in: int
    tokens_out: int
    kind: Literal["token"] = "token"

    @property
    def key(self) -> str:
        return event_key(self.producer_id, self.seq)

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)


Event = GpuEvent | TokenEvent


def event_key(producer_id: str, seq: int) -> str:
    """The idempotency key and Mongo ``_id`` of an event: ``"<producer_id>:<seq>"``."""
    return f"{producer_id}:{seq}"


def valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def _reject_constant(name: str) -> float:
    # json.loads accepts NaN and Infinity by default; they are not JSON and break range checks.
    raise ValueError(f"non-finite number {name}")


def _field(obj: dict[str, Any], name: str) -> Any:
    if name not in obj or obj[name] is None:
        raise InvalidEvent(f"missing_field:{name}", f"field {name!r} is required")
    return obj[name]


def _shown(value: object) -> str:
    """``repr`` cut to 80 characters: a message must stay short whatever the event holds (repr also escapes a lone
    surrogate, so the message itself is always encodable)."""
    try:
        text = repr(value)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        return f"an integer of {value.bit_length()} bits" if isinstance(value, int) else type(value).__name__
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _check_int64(name: str, value: int) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidEvent(f"out_of_range:{name}", f"field {name!r} must fit in a signed 64-bit integer, got {_shown(value)}")


def _number(obj: dict[str, Any], name: str) -> float:
    """A finite number that BSON can store: a float as a double, an int as an int64 (the int is kept, not converted:
    ``float()`` of an int past 1.8e308 raises OverflowError, and one past 2**63 would not round-trip)."""
    value = _field(obj, name)
    # bool is an int subclass: true must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"wrong_type:{name}", f"field {name!r} must be a number, got {type(value).__name__}")
    if isinstance(value, int):
        _check_int64(name, value)
    elif not math.isfinite(value):
        raise InvalidEvent(f"out_of_range:{name}", f"field {name!r} must be finite, got {value!r}")
    return value


def _integer(obj: dict[str, Any], name: str) -> int:
    value = _field(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"wrong_type:{name}", f"field {name!r} must be an integer, got {type(value).__name__}")
    _check_int64(name, value)
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""C0 and C1 control characters, NUL included: no model name has one, and they garble logs and terminals."""


def _text(obj: dict[str, Any], name: str, max_length: int) -> str:
    """A free-text field: 1..max_length characters, encodable as UTF-8 (JSON's ``\\ud800`` escape decodes to a lone
    surrogate, which BSON cannot encode), and no control characters (NUL included)."""
    value = _field(obj, name)
    if not isinstance(value, str):
        raise InvalidEvent(f"wrong_type:{name}", f"field {name!r} must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= max_length:
        raise InvalidEvent(f"bad_format:{name}", f"field {name!r} must be 1-{max_length} characters, got {len(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(f"bad_format:{name}", f"field {name!r} must be encodable as UTF-8 (no lone surrogate), got {_shown(value)}") from None
    if _CONTROL.search(value):
        raise InvalidEvent(f"bad_format:{name}", f"field {name!r} must not contain control characters, got {_shown(value)}")
    return value


def _identifier(obj: dict[str, Any], name: str) -> str:
    value = _field(obj, name)
    if not isinstance(value, str):
        raise InvalidEvent(f"wrong_type:{name}", f"field {name!r} must be a string, got {type(value).__name__}")
    if ID_PATTERN.fullmatch(value) is None:
        raise InvalidEvent(f"bad_format:{name}", f"field {name!r} must be 1-64 characters of [A-Za-z0-9_.:-], got {value[:80]!r}")
    return value


def _at_least(name: str, value: float, low: float, *, strict: bool = False) -> None:
    if value < low or (strict and value == low):
        bound = f"> {low}" if strict else f">= {low}"
        raise InvalidEvent(f"out_of_range:{name}", f"field {name!r} must be {bound}, got {_shown(value)}")


def parse_event(raw: bytes | None) -> Event:
    """Decode and validate one Kafka message value. Raises ``InvalidEvent``; never anything else."""
    if not raw:
        raise InvalidEvent("bad_json", "empty message")
    try:
        obj = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidEvent("bad_json", f"not valid UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidEvent("not_object", f"event must be a JSON object, got {type(obj).__name__}")

    producer_id = _identifier(obj, "producer_id")
    seq = _integer(obj, "seq")
    _at_least("seq", seq, 1)
    produced_at = float(_number(obj, "produced_at"))
    _at_least("produced_at", produced_at, 0, strict=True)
    kind = _field(obj, "kind")

    if kind == "gpu":
        utilization = _number(obj, "utilization_pct")
        if not 0 <= utilization <= 100:
            raise InvalidEvent("out_of_range:utilization_pct", f"field 'utilization_pct' must be in 0..100, got {_shown(utilization)}")
        event = GpuEvent(
            producer_id=producer_id,
            seq=seq,
            produced_at=produced_at,
            gpu_id=_identifier(obj, "gpu_id"),
            utilization_pct=utilization,
            memory_used_mb=_number(obj, "memory_used_mb"),
            memory_total_mb=_number(obj, "memory_total_mb"),
            temperature_c=_number(obj, "temperature_c"),
            power_w=_number(obj, "power_w"),
        )
        _at_least("memory_used_mb", event.memory_used_mb, 0)
        _at_least("memory_total_mb", event.memory_total_mb, 0, strict=True)
        _at_least("power_w", event.power_w, 0)
        return event
    if kind == "token":
        model = _text(obj, "model", MODEL_MAX_LENGTH)
        event_t = TokenEvent(
            producer_id=producer_id,
            seq=seq,
            produced_at=produced_at,
            model=model,
            tokens_in=_integer(obj, "tokens_in"),
            tokens_out=_integer(obj, "tokens_out"),
        )
        _at_least("tokens_in", event_t.tokens_in, 0)
        _at_least("tokens_out", event_t.tokens_out, 0)
        return event_t
    raise InvalidEvent("unknown_kind", f"field 'kind' must be 'gpu' or 'token', got {_shown(kind)}")


def gpu_event(
    producer_id: str,
    seq: int,
    gpu_id: str,
    *,
    produced_at: float,
    utilization_pct: float,
    memory_used_mb: float,
    memory_total_mb: float,
    temperature_c: float,
    power_w: float,
) -> GpuEvent:
    return GpuEvent(
        producer_id=producer_id,
        seq=seq,
        produced_at=produced_at,
        gpu_id=gpu_id,
        utilization_pct=utilization_pct,
        memory_used_mb=memory_used_mb,
        memory_total_mb=memory_total_mb,
        temperature_c=temperature_c,
        power_w=power_w,
    )


def token_event(
    producer_id: str, seq: int, model: str, *, produced_at: float, tokens_in: int, tokens_out: int
) -> TokenEvent:
    return TokenEvent(
        producer_id=producer_id, seq=seq, produced_at=produced_at, model=model, tokens_in=tokens_in, tokens_out=tokens_out
    )


def encode_event(event: Event) -> bytes:
    """The wire form. ``parse_event(encode_event(e)) == e`` for every valid event."""
    return json.dumps(event.to_doc(), separators=(",", ":"), allow_nan=False).encode()
