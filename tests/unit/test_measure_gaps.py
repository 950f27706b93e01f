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
