import pytest

from probes.measure import ProducerAcks, distribution, missing_events, quantile, recovery_seconds


def test_quantile_interpolates_between_ranks():
    assert quantile([1, 2, 3, 4], 0.5) == pytest.approx(2.5)
    assert quantile([10], 0.95) == 10
    assert quantile(range(1, 101), 0.95) == pytest.approx(95.05)


def test_quantile_rejects_empty_and_out_of_range():
    with pytest.raises(ValueError, match="no values"):
        quantile([], 0.5)
    with pytest.raises(ValueError, match=r"within \[0, 1\], got 1.5"):
        quantile([1], 1.5)


def test_distribution_reports_p50_p95_max():
    assert distribution([1.0, 2.0, 3.0, 10.0]) == {"n": 4, "p50": 2.5, "p95": 8.95, "max": 10.0}


def test_missing_events_counts_acked_but_not_stored():
    acks = ProducerAcks("p-1", max_acked_seq=10, failed_seqs=frozenset({4}))
    assert missing_events(acks, [1, 2, 3, 5, 6, 8, 9, 10]) == [7]


def test_missing_events_ignores_failed_sends_and_events_outside_the_window():
    acks = ProducerAcks("p-1", max_acked_seq=6, failed_seqs=frozenset({6}), first_seq=3)
    assert acks.expected() == {3, 4, 5}
    assert missing_events(acks, [3, 4, 5, 7, 8]) == []


def test_recovery_waits_for_replica_and_every_partition():
    partitions = {"gpu-events/0": 101.0, "gpu-events/1": None}
    assert recovery_seconds(100.0, 103.5, partitions) is None
    assert recovery_seconds(100.0, None, {"gpu-events/0": 101.0}) is None
    assert recovery_seconds(100.0, 103.5, {"gpu-events/0": 101.0, "gpu-events/1": 107.25}) == pytest.approx(7.25)
    assert recovery_seconds(100.0, 102.0, {"gpu-events/0": 100.5}) == pytest.approx(2.0)
