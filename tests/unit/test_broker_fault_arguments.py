"""The broker-fault actions' refusals before any side effect, and which Kafka broker fault a probe measures from."""
from __future__ import annotations

import pytest

from chaoslib_ext import timeline
from chaoslib_ext.actions import kafka as kafka_actions
from chaoslib_ext.errors import InvalidArgument, NoData
from probes import kafka as kafka_probes


@pytest.fixture
def config(tmp_path):
    return {"gameday_timeline": str(tmp_path / "timeline.jsonl")}


def test_a_crash_ends_at_its_kill(config):
    timeline.record("run.started", config, at=100.0)
    timeline.record("run.method_started", config, at=101.0)
    timeline.record("fault.kill", config, at=102.0, component="processor", instance="processor-0")
    timeline.record("fault.kill", config, at=103.5, component="kafka", instance="kafka-2", led_partitions=3,
                    leader_counts={"kafka-1": 2, "kafka-2": 3, "kafka-3": 2})
    fault = kafka_probes._broker_fault(config)
    assert fault == {"kind": "crash", "at": 103.5, "ended_at": 103.5, "instance": "kafka-2", "led_partitions": 3,
                     "leader_counts": {"kafka-1": 2, "kafka-2": 3, "kafka-3": 2}}


def test_an_isolation_ends_at_its_heal_and_a_processor_partition_is_not_a_broker_fault(config):
    timeline.record("run.started", config, at=100.0)
    timeline.record("run.method_started", config, at=101.0)
    timeline.record("fault.partition", config, at=101.5, between=["processor"])
    timeline.record("fault.healed", config, at=101.9, fault="kafka-partition")
    timeline.record("fault.partition", config, at=102.0, component="kafka", isolate="kafka-3", led_partitions=4,
                    leader_counts={"kafka-1": 1, "kafka-2": 2, "kafka-3": 4})
    fault = kafka_probes._broker_fault(config)
    assert (fault["kind"], fault["instance"], fault["at"], fault["ended_at"]) == ("isolation", "kafka-3", 102.0, None)
    timeline.record("fault.healed", config, at=132.0, fault="kafka-partition")
    assert kafka_probes._broker_fault(config)["ended_at"] == 132.0


def test_no_broker_fault_is_a_baseline_before_the_method_and_no_data_after_it(config):
    timeline.record("run.started", config, at=100.0)
    timeline.record("fault.kill", config, at=99.0, component="kafka", instance="kafka-1")  # an earlier run's
    assert kafka_probes._broker_fault(config) is None
    timeline.record("run.method_started", config, at=101.0)
    timeline.record("fault.kill", config, at=102.0, component="processor", instance="processor-1")
    with pytest.raises(NoData, match="no Kafka broker fault"):
        kafka_probes._broker_fault(config)


@pytest.mark.parametrize("arguments, message", [
    ({"which": ""}, "which must be 'busiest-leader' or a node name"),
    ({"ttl_seconds": 0}, "ttl_seconds must be a number > 0 and <= 3600, got 0"),
    ({"ttl_seconds": True}, "ttl_seconds must be a number > 0 and <= 3600, got True"),
    ({"ttl_seconds": 3601}, "ttl_seconds must be a number > 0 and <= 3600, got 3601"),
    ({"mode": "latency"}, "mode 'latency' is not one of hold, drop, reset"),
])
def test_isolation_arguments_are_refused_before_any_fault(arguments, message, monkeypatch):
    monkeypatch.setattr(kafka_actions, "from_configuration", lambda *a: pytest.fail("reached the target"))
    with pytest.raises(InvalidArgument, match=message):
        kafka_actions.isolate_kafka_broker(**arguments)


def test_a_target_that_cannot_cut_broker_links_says_so():
    from chaoslib_ext.errors import TargetMisconfigured
    from chaoslib_ext.targets.base import Target

    class Bare(Target):
        kind = "bare"
    for name in list(Bare.__abstractmethods__):
        setattr(Bare, name, lambda *a, **k: None)
    Bare.__abstractmethods__ = frozenset()
    with pytest.raises(TargetMisconfigured, match="the bare target cannot isolate one Kafka node"):
        Bare().isolate_kafka_node("kafka-2")


@pytest.mark.parametrize("values, expected", [
    ({"kafka-1": 0, "kafka-2": 1, "kafka-3": 0}, ["kafka-2"]),
    ({"kafka-1": 0, "kafka-2": 0, "kafka-3": 0}, []),  # an election in progress
    ({"kafka-1": 1, "kafka-2": 0, "kafka-3": 1}, ["kafka-1", "kafka-3"]),  # a cut node still claims the role
])
def test_the_active_controller_is_every_node_whose_gauge_claims_it(values, expected, monkeypatch):
    asked = []

    def query(_target, promql):
        asked.append(promql)
        return [{"metric": {"job": "kafka", "pod": pod}, "value": [0, str(v)]} for pod, v in values.items()]

    monkeypatch.setattr(kafka_actions, "prometheus_query", query)
    assert kafka_actions.active_controllers(object()) == expected
    assert asked == ['kafka_controller_kafkacontroller_activecontrollercount{job="kafka"}']
