"""Every experiment in experiments/ belongs to the full game-day suite, and every suite loads."""
from pathlib import Path

import pytest

from chaoslib_ext.gameday.suite import SuiteError, load_suite

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_every_experiment_is_in_the_gameday_suite():
    in_suite = [e.path for e in load_suite(EXPERIMENTS / "suites" / "gameday.yaml").experiments]
    on_disk = {p.resolve() for p in EXPERIMENTS.glob("*.yaml")}
    assert on_disk - set(in_suite) == set(), "experiments missing from suites/gameday.yaml"
    assert len(in_suite) == len(set(in_suite)), "an experiment is listed twice"


def test_the_kafka_cluster_suite_is_the_game_days_broker_faults():
    cluster = {e.path for e in load_suite(EXPERIMENTS / "suites" / "kafka-cluster.yaml").experiments}
    gameday = {e.path for e in load_suite(EXPERIMENTS / "suites" / "gameday.yaml").experiments}
    assert {p.name for p in cluster} == {"kafka-broker-crash.yaml", "kafka-broker-isolated.yaml"}
    assert cluster <= gameday


def test_the_gate_is_a_subset_of_the_gameday():
    gate = {e.path for e in load_suite(EXPERIMENTS / "suites" / "gate.yaml").experiments}
    gameday = {e.path for e in load_suite(EXPERIMENTS / "suites" / "gameday.yaml").experiments}
    assert gate and gate <= gameday


@pytest.mark.parametrize("text, message", [
    ("version: gameday/v0\nexperiments: [a.yaml]\n", "version must be 'gameday/v1'"),
    ("version: gameday/v1\nexperiments: []\n", "experiments must be a non-empty list"),
    ("version: gameday/v1\nexperimentz: [a.yaml]\n", "unknown field(s) experimentz"),
    ("version: gameday/v1\nexperiments: [{path: ../processor-pod-kill.yaml, retries: 2}]\n",
     "experiments[0]: unknown field(s) retries"),
    ("version: [\n", "is not valid YAML"),
])
def test_bad_suites_are_named(tmp_path, text, message):
    suite = EXPERIMENTS / "suites" / "_planted_test_suite.yaml"
    suite.write_text(text)
    try:
        with pytest.raises(SuiteError) as raised:
            load_suite(suite)
        assert message in str(raised.value)
    finally:
        suite.unlink()
