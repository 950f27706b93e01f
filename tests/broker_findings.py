"""A Kafka broker fault's open finding, shared by the local game day's test and the kind cluster's: when the
faulted node was (or became) the controller, moving the writes can take a little over the event bus's 10 s.
Such a run is reported, not failed, while the write gap is its only unmet probe and stays under a ceiling; the
gate itself still says DEVIATED (exit 1), as it should."""
from __future__ import annotations

from journals import unmet_probes

WRITE_GAP_PROBE = "partition-write-unavailability-p95-within-10s"
WRITE_GAP_FINDING_CEILING_S = 20.0
"""On CI's loaded machine one local isolation in seven took 11.9 s (p95 11.3 s) to move the writes, where six on a
quiet machine took 5.1 to 8.3 s: the fence and a producer's 7 s socket timeout add up (docs/benchmarks.md, "The
wedge, explained and fixed"). On kind, a crash of the node that was also the active controller paused the writes
for 9.8 and 10.2 s (a new controller is elected before it fences the lost broker; "Three Kafka brokers on kind").
The wedge this replaced held the writes for the whole 30 s isolation, which the ceiling still fails."""



def write_gap_finding(journal: dict) -> str | None:
    """The open finding as a message when a broker experiment's only unmet probe is the write gap and that gap is
    under the ceiling; None when the experiment passed. Anything else fails here."""
    if not journal["deviated"]:
        return None
    unmet = unmet_probes(journal, "after")
    assert set(unmet) == {WRITE_GAP_PROBE} and journal["steady_states"]["before"]["steady_state_met"], unmet
    gaps = unmet[WRITE_GAP_PROBE]
    assert gaps["p95"] <= WRITE_GAP_FINDING_CEILING_S, gaps
    fault = journal["run"][0]["output"]
    return (f"open finding, a broker {gaps['fault']['kind']}'s writes moved late: {gaps['fault']['instance']} "
            f"(active controllers {fault['active_controllers']}), write gaps {gaps['partitions']} s, p95 "
            f"{gaps['p95']} s over the 10 s objective")
