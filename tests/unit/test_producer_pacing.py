import random

import pytest

from chaos_dr_stack.events import encode_event, parse_event
from chaos_dr_stack.producers.ledger import FAILED_SEQS_KEPT, AckLedger
from chaos_dr_stack.producers.pacing import Pacer
from chaos_dr_stack.producers.worker import EventSource


def drain(pacer: Pacer, now: float) -> int:
    due = pacer.due(now)
    pacer.sent(due)
    return due


def test_pacer_keeps_the_rate_whatever_the_wakeup_times():
    pacer = Pacer(rate=20, now=0.0)
    wakeups = [0.0, 0.013, 0.31, 0.33, 0.9, 0.999, 1.0, 1.7, 2.04, 3.0]
    sent = [drain(pacer, t) for t in wakeups]
    assert sum(sent) == 61  # events due at 0, 0.05, ..., 3.0
    assert sent[0] == 1 and sent[2] == 6


def test_pacer_delay_points_at_the_next_due_event():
    pacer = Pacer(rate=10, now=5.0)
    assert pacer.delay(5.0) == 0.0
    drain(pacer, 5.0)
    assert pacer.delay(5.02) == pytest.approx(0.08)
    assert pacer.delay(5.5) == 0.0


def test_pacer_sends_at_most_the_backlog_limit_after_a_stall():
    pacer = Pacer(rate=100, now=0.0, max_backlog_s=1.0)
    drain(pacer, 0.0)
    burst = drain(pacer, 30.0)
    assert 100 <= burst <= 101
    assert drain(pacer, 30.5) == 50


def test_pacer_rate_change_starts_a_new_schedule_and_zero_pauses():
    pacer = Pacer(rate=10, now=0.0)
    drain(pacer, 1.0)
    pacer.set_rate(0, now=1.0)
    assert pacer.due(50.0) == 0
    assert pacer.delay(50.0, idle=0.1) == 0.1
    pacer.set_rate(100, now=50.0)
    assert drain(pacer, 50.1) == 11
    with pytest.raises(ValueError, match="rate must be >= 0"):
        pacer.set_rate(-1, now=0)


def test_ledger_counts_acks_and_bounds_failed_seqs():
    ledger = AckLedger()
    ledger.register("p-1", started_at=12.5)
    for seq in (1, 3, 2):
        ledger.sent("p-1")
        ledger.acked("p-1", seq)
    for seq in range(4, 4 + FAILED_SEQS_KEPT + 5):
        ledger.failed("p-1", seq)
    [entry] = ledger.snapshot()
    assert (entry["acked"], entry["max_acked_seq"], entry["sent"], entry["started_at"]) == (3, 3, 3, 12.5)
    assert entry["failed"] == FAILED_SEQS_KEPT + 5
    assert len(entry["failed_seqs"]) == FAILED_SEQS_KEPT
    assert entry["failed_seqs"][0] == 9 and entry["failed_seqs"][-1] == FAILED_SEQS_KEPT + 8


def test_event_source_mixes_gpu_and_token_events_that_validate():
    source = EventSource("producer-0-ab", gpus=3, token_every=5, rng=random.Random(1))
    produced = [source.next(seq, now=1000.0 + seq) for seq in range(1, 21)]
    topics = [topic for topic, _ in produced]
    assert topics.count("token-events") == 4 and topics.count("gpu-events") == 16
    assert [e.gpu_id for t, e in produced if t == "gpu-events"][:4] == ["gpu-0", "gpu-1", "gpu-2", "gpu-0"]
    for _topic, event in produced:
        assert parse_event(encode_event(event)) == event
