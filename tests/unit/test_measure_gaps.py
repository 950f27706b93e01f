"""The write gap across a fault, from a partition's append times."""
import pytest

from probes.measure import write_gap_across


@pytest.mark.parametrize("appends, gap", [
    ([1.0, 2.0, 3.0, 9.5, 10.0], 6.5),       # last before 5.0 is 3.0, first after is 9.5
    ([9.5, 3.0, 1.0, 12.0], 6.5),             # order does not matter
    ([1.0, 5.0, 5.2], 0.2),                   # an append at the fault itself counts as before it
    ([1.0, 2.0], None),                       # not written again yet
    ([6.0, 7.0], None),                       # nothing before the fault to measure from
    ([], None),
])
def test_the_gap_spans_the_fault(appends, gap):
    measured = write_gap_across(appends, 5.0)
    assert measured == (pytest.approx(gap) if gap is not None else None)


@pytest.mark.parametrize("appends, gap", [
    # The kill bit 0.1 s after its recorded start at 5.0: the pause from 5.1 to 10.1 is the fault's.
    ([4.0, 4.5, 5.05, 5.1, 10.1, 10.2, 12.0], 5.0),
    ([4.0, 4.5, 8.5, 12.0], 4.0),             # a pause that began before the fault still counts from its start
    ([4.0, 4.5, 5.2, 7.0, 9.0, 9.5, 11.0], 2.0),  # the longest beginning before the onset's end: 7.0 to 9.0
    ([4.0, 5.5, 10.0, 25.0], 4.5),            # begun after the onset's end (10.0 to 25.0): not this fault's
    ([4.0, 5.5, 8.0], None),                  # not written after the onset's end yet: a pause may still be growing
    ([6.0, 12.0], None),                      # nothing before the fault to measure from
])
def test_a_pause_that_begins_while_the_fault_takes_effect_is_the_faults(appends, gap):
    measured = write_gap_across(appends, 5.0, onset_until=10.0)
    assert measured == (pytest.approx(gap) if gap is not None else None)
