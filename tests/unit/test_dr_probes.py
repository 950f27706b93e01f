"""RPO and the /gpu/info consistency check, as pure functions: planted losses are reported exactly."""
from __future__ import annotations

from probes.dr import gpu_info_consistent, rpo_from
from probes.measure import ProducerAcks


def produced(seqs, start=1000.0, step=0.1):
    return {s: start + s * step for s in seqs}


def test_nothing_lost_means_rpo_is_the_age_of_the_newest_acknowledged_event():
    stored = {"p": produced(range(1, 101))}
    rpo = rpo_from(1000.0 + 100 * 0.1 + 0.25, [ProducerAcks("p", 100)], stored)
    assert rpo.lost == [] and rpo.checked == 100
    assert rpo.seconds == 0.25


def test_a_lost_tail_is_listed_exactly_and_sets_the_recovery_point_before_it():
    stored = {"p": produced(range(1, 91)), "q": produced(range(1, 101))}
    disaster = 1000.0 + 100 * 0.1
    rpo = rpo_from(disaster, [ProducerAcks("p", 100), ProducerAcks("q", 100)], stored)
    assert rpo.lost == [("p", s) for s in range(91, 101)]
    assert rpo.recovery_point == 1000.0 + 90 * 0.1
    assert rpo.seconds == 1.0


def test_an_event_after_a_gap_does_not_hide_the_gap():
    stored = {"p": produced([s for s in range(1, 101) if s not in (40, 41)])}
    rpo = rpo_from(1010.0, [ProducerAcks("p", 100)], stored)
    assert rpo.lost == [("p", 40), ("p", 41)]
    assert rpo.seconds == round(1010.0 - (1000.0 + 39 * 0.1), 3)


def test_failed_sends_were_never_acknowledged_so_they_are_not_lost():
    stored = {"p": produced([s for s in range(1, 11) if s != 5])}
    rpo = rpo_from(1001.0, [ProducerAcks("p", 10, frozenset({5}))], stored)
    assert rpo.lost == [] and rpo.checked == 9


def test_a_window_that_lost_everything_falls_back_to_the_event_before_it():
    stored = {"p": produced([10])}
    rpo = rpo_from(1005.0, [ProducerAcks("p", 20, first_seq=11)], stored)
    assert len(rpo.lost) == 10 and rpo.recovery_point == 1001.0 and rpo.seconds == 4.0


def test_gpu_info_must_list_every_gpu_at_least_as_new_as_the_stored_events():
    newest = {"gpu-0": 10.0, "gpu-1": 11.0}
    assert gpu_info_consistent([{"gpu_id": "gpu-0", "produced_at": 10.0}, {"gpu_id": "gpu-1", "produced_at": 12.0}],
                               newest)
    assert not gpu_info_consistent([{"gpu_id": "gpu-0", "produced_at": 10.0}], newest)
    assert not gpu_info_consistent([{"gpu_id": "gpu-0", "produced_at": 9.0}, {"gpu_id": "gpu-1", "produced_at": 11.0}],
                                   newest)
    assert not gpu_info_consistent([], {})


def test_a_restore_that_took_a_backup_the_corruption_passed_over_is_named_as_not_exercising_it(tmp_path):
    from chaoslib_ext import timeline
    from probes.dr import corrupt_backups_refused

    config = {"gameday_timeline": str(tmp_path / "timeline.jsonl")}
    timeline.record("run.started", config, at=1.0)
    timeline.record("run.method_started", config, at=2.0)
    timeline.record("fault.corrupt_backup", config, at=3.0, backup_id="b1", file="events.bson",
                    passed_over=["b2: no data file to damage (database ca3 had no documents when it was taken; "
                                 "collections: none)"])
    timeline.record("action.restore", config, at=4.0, backup_id="b2", fallbacks=[])
    report = corrupt_backups_refused(configuration=config)
    assert report["violations"] == 1
    assert report["details"] == [
        "restore at 4.0 used backup b2: no data file to damage (database ca3 had no documents when it was taken; "
        "collections: none), which the corruption passed over, and never reached corrupt backup b1"]
