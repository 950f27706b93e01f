"""The Kafka partition fault on a real local stack (its own, so the session stack is not disturbed).

Planted ground truth: the processor is held from the broker for exactly 5.0 s (the proxy's TTL heals it, and
reports when). The failover probe must measure the processing stall (the longest gap between a partition's
writes) within 250 ms of that outage, lose nothing, and the fault must have healed by itself.
"""
from __future__ import annotations

import time

import httpx
import pytest

from chaoslib_ext import timeline
from chaoslib_ext.targets.local import LocalTarget
from probes.failover import processing_stall
from chaoslib_ext.errors import NoData
from probes.processing import delivery_report, end_to_end_lag_seconds
from stack.local.api import LocalStack

OUTAGE_SECONDS = 5.0
AGREEMENT_SECONDS = 0.25


def wait_until_warm(control_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if end_to_end_lag_seconds(q=0.99, window_seconds=3, configuration={"local_control_url": control_url}) < 1:
                return
        except NoData:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the pipeline did not warm up in {timeout} s")


@pytest.fixture(scope="module")
def stack(stack_binaries, stack_dirs):
    with LocalStack(state_dir=stack_dirs("partition-stack"), rate=20) as running:
        wait_until_warm(running.endpoints["control"])
        yield running


def test_a_held_partition_stalls_processing_for_its_length_and_heals_by_itself_with_zero_loss(stack, tmp_path):
    control = stack.endpoints["control"]
    config = {"local_control_url": control, "gameday_timeline": str(tmp_path / "timeline.jsonl")}
    target = LocalTarget(control)
    try:
        fault = target.partition(["processor"], "hold", OUTAGE_SECONDS)
    finally:
        target.close()
    timeline.record("fault.partition", config, at=fault["applied_at"], between=["processor"], mode="hold")
    listed = httpx.get(control + "/faults").json()["faults"]
    assert [f["kind"] for f in listed if f["kind"] == "kafka-partition"] == ["kafka-partition"]

    measured = processing_stall(gap_seconds=1.0, timeout=60, configuration=config)

    state = httpx.get(control + "/faults/kafka-partition").json()
    assert state["active"] is None, "the partition outlived its TTL"
    assert state["last_heal"]["reason"] == "expired"  # nobody called DELETE: the TTL healed it
    truth = state["last_heal"]["healed_at"] - fault["applied_at"]
    assert truth == pytest.approx(OUTAGE_SECONDS, abs=0.05)
    print(f"planted outage {truth:.3f} s; measured stall {measured['stall_seconds']} s, "
          f"failover {measured['seconds']} s, resumed {measured['resumed_at'] - state['last_heal']['healed_at']:.3f} s "
          f"after the heal; partitions {measured['partitions']}")
    assert abs(measured["stall_seconds"] - truth) <= AGREEMENT_SECONDS, measured
    # Processing cannot resume before the heal, and resumes within one batch (0.2 s) plus a fetch after it.
    assert truth <= measured["seconds"] <= truth + 2 * AGREEMENT_SECONDS, measured

    report = delivery_report(since=fault["applied_at"] - 1, settle_timeout=30, configuration=config)
    assert report["lost"] == 0 and report["checked"] >= 100, report


def test_bad_partition_requests_are_refused_before_anything_is_cut(stack):
    control = stack.endpoints["control"]
    response = httpx.put(control + "/faults/kafka-partition", json={"between": ["kafka"], "ttl_seconds": 5})
    assert response.status_code == 400
    assert "between: unknown service 'kafka'" in response.text
    assert httpx.get(control + "/faults/kafka-partition").json()["active"] is None
    healed = httpx.delete(control + "/faults/kafka-partition").json()
    assert healed["was_active"] is False


def test_reset_mode_refuses_the_processor_until_healed(stack):
    control = stack.endpoints["control"]
    config = {"local_control_url": control}
    fault = httpx.put(control + "/faults/kafka-partition",
                      json={"between": ["processor"], "mode": "reset", "ttl_seconds": 3}).json()
    time.sleep(3.5)
    assert httpx.get(control + "/faults/kafka-partition").json()["active"] is None
    # After the heal the processor reconnects and catches up, and nothing acknowledged was lost.
    report = delivery_report(since=fault["applied_at"] - 1, settle_timeout=30, configuration=config)
    assert report["lost"] == 0, report
