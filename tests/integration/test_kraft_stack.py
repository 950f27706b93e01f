"""The local stack on Apache Kafka (`--kafka kraft`): one KRaft node from the jars `make deps` fetched, behind the
same fault proxy. A SIGKILLed broker is restarted by the runner with its data, so the topics keep the contract's
partition counts without being created again, and no acknowledged event is lost."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient
from waiting import wait_for

from probes.processing import delivery_report
from chaos_dr_stack.local.api import LocalStack, pick_base_port
from chaos_dr_stack.local.kraft import KafkaNotInstalled, java_binary, kafka_libs
from chaos_dr_stack.local.procs import read_cmdline
from chaos_dr_stack.local.topics import TOPICS

pytestmark = pytest.mark.integration


def _kafka_missing() -> str | None:
    try:
        kafka_libs()
        java_binary()
    except KafkaNotInstalled as exc:
        return str(exc)
    return None


MISSING = _kafka_missing()
if MISSING:
    print(f"\nskipping the KRaft stack tests: {MISSING}", file=sys.stderr)
    pytestmark = [pytestmark, pytest.mark.skip(reason=MISSING)]


@pytest.fixture(scope="module")
def stack(stack_binaries, stack_dirs):
    with LocalStack(state_dir=stack_dirs("kraft-stack"), rate=5, timeout=240) as running:
        yield running


def kafka_instance(control: str) -> dict:
    return httpx.get(control + "/instances", params={"component": "kafka"}, timeout=5).json()["instances"][0]


def partition_counts(bootstrap: str) -> dict[str, int]:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return {name: len(metadata.topics[name].partitions) for name in TOPICS if name in metadata.topics}


def test_the_broker_is_apache_kafka_and_events_flow(stack):
    control = stack.endpoints["control"]
    kafka = kafka_instance(control)
    cmdline = read_cmdline(kafka["pid"]) or []
    assert "kafka.Kafka" in cmdline and Path(cmdline[0]).name == "java", cmdline
    assert partition_counts(stack.endpoints["kafka_bootstrap"]) == TOPICS
    report = delivery_report(since="start", settle_timeout=30, configuration={"local_control_url": control})
    assert report["lost"] == 0 and report["checked"] > 0, report


def test_a_sigkilled_broker_comes_back_with_its_topics_and_loses_nothing(stack):
    control = stack.endpoints["control"]
    killed = httpx.post(control + "/instances/kafka/kill", json={"signal": "SIGKILL"}, timeout=5).json()
    kafka = wait_for(lambda: (k := kafka_instance(control))["ready"] and k["pid"] != killed["pid"] and k,
                     90, "the broker ready again", interval=0.2)
    assert kafka["restarts"] == 1 and kafka["last_exit_code"] == -9, kafka
    assert partition_counts(stack.endpoints["kafka_bootstrap"]) == TOPICS
    restarted_at = time.time()
    wait_for(lambda: httpx.get(control + "/status", timeout=5).json()["ready"], 60, "the whole stack ready again",
             interval=0.2)
    report = delivery_report(since="start", settle_timeout=60, configuration={"local_control_url": control})
    assert report["lost"] == 0 and report["lost_events"] == [], report
    # Not vacuous: events produced after the restart were acknowledged and stored too.
    after = delivery_report(since=restarted_at, settle_timeout=60, configuration={"local_control_url": control})
    assert after["lost"] == 0 and after["checked"] > 0, after


def test_a_missing_kafka_install_is_named_and_the_runner_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "chaos_dr_stack.local.runner", "--base-port", str(pick_base_port()), "--state-dir",
         str(tmp_path / "state")],
        env={**os.environ, "GAMEDAY_CACHE": str(tmp_path / "no-cache")},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Apache Kafka 4.1.0 is not in" in result.stderr and "make deps" in result.stderr, result.stderr
