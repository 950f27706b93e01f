"""The runner's restart decisions, liveness probes and process identity checks, tested as pure functions: no process,
no sleep."""
from __future__ import annotations

import dataclasses

import pytest

from chaos_dr_stack.local.components import Binaries, build_specs
from chaos_dr_stack.local.layout import StackLayout
from chaos_dr_stack.local.procs import cmdline_matches
from chaos_dr_stack.local.readiness import LivenessProbe, ReadyCheck
from chaos_dr_stack.local.restart_policy import RestartPolicy, after_death, restart_delay

POLICY = RestartPolicy()


def test_defaults_are_the_documented_ones():
    assert (POLICY.initial_delay, POLICY.multiplier, POLICY.max_delay, POLICY.stable_after) == (0.5, 2.0, 10.0, 30.0)


def test_policy_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        POLICY.max_delay = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("deaths", "delay"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 10.0), (7, 10.0), (10_000, 10.0)],
)
def test_delay_doubles_from_half_a_second_and_caps_at_ten(deaths, delay):
    assert restart_delay(POLICY, deaths) == delay


def test_a_very_long_crash_loop_does_not_overflow():
    assert restart_delay(RestartPolicy(multiplier=1000.0, max_delay=60.0), 10**9) == 60.0


def test_multiplier_one_means_a_constant_delay():
    assert restart_delay(RestartPolicy(multiplier=1.0), 50) == 0.5


def test_deaths_in_quick_succession_back_off():
    deaths, delays = 0, []
    for _ in range(7):
        deaths, delay = after_death(POLICY, deaths, ran_for=2.0)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert deaths == 7


def test_a_stable_run_resets_the_back_off():
    deaths, delay = after_death(POLICY, deaths_before=6, ran_for=30.0)
    assert (deaths, delay) == (1, 0.5)


def test_a_run_just_short_of_stable_still_backs_off():
    deaths, delay = after_death(POLICY, deaths_before=3, ran_for=29.9)
    assert (deaths, delay) == (4, 4.0)


def test_the_first_death_ever_restarts_after_the_initial_delay():
    assert after_death(POLICY, deaths_before=0, ran_for=0.1) == (1, 0.5)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("initial_delay", 0, "initial_delay must be > 0"),
        ("multiplier", 0.5, "multiplier must be >= 1"),
        ("max_delay", 0.1, "max_delay (0.1 s) must be >= initial_delay (0.5 s)"),
        ("stable_after", -1, "stable_after must be > 0"),
    ],
)
def test_bad_policies_are_rejected_with_the_field_named(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RestartPolicy(**{field: value})


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="deaths_in_a_row must be >= 1, got 0"):
        restart_delay(POLICY, 0)
    with pytest.raises(ValueError, match="ran_for must be >= 0 seconds, got -1"):
        after_death(POLICY, 0, -1)


# Which pid may be signalled when cleaning up after a crashed runner: only one still running what we started.
STARTED = ["/venv/bin/secantusd-py", "--port", "18003"]


def test_a_script_run_through_its_interpreter_matches():
    assert cmdline_matches(["/venv/bin/python3", "/venv/bin/secantusd-py", "--port", "18003"], STARTED)


def test_a_binary_matches_itself():
    assert cmdline_matches(["/usr/bin/prometheus", "--x=1"], ["/usr/bin/prometheus", "--x=1"])


@pytest.mark.parametrize(
    "actual",
    [
        None,
        [],
        ["/venv/bin/python3", "/venv/bin/secantusd-py", "--port", "19003"],  # another stack's server
        ["/usr/bin/vim", "--port", "18003"],  # a reused pid running something else
    ],
)
def test_anything_else_does_not_match(actual):
    assert not cmdline_matches(actual, STARTED)


def test_only_the_database_has_a_liveness_probe_and_it_needs_the_storage_lock(tmp_path):
    layout = StackLayout(base_port=20000, state_dir=tmp_path)
    specs = build_specs(layout, Binaries("secantusd-py", "prometheus", "alertmanager"), 1, kafka_argvs=[["kafka"]])
    probes = {spec.name: spec.liveness for spec in specs if spec.liveness is not None}
    assert probes == {"mongo": LivenessProbe(ReadyCheck("mongo-storage", layout.mongo_port), 5.0, 5.0, 6)}
    assert probes["mongo"].describe() == (
        f"mongo listDatabases on 127.0.0.1:{layout.mongo_port} within 5 s, failing 6 times in a row 5 s apart")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"period": 0}, "period and timeout must be > 0 seconds, got 0 and 1"),
        ({"timeout": -1}, "period and timeout must be > 0 seconds, got 1 and -1"),
        ({"failure_threshold": 0}, "failure_threshold must be >= 1, got 0"),
    ],
)
def test_bad_liveness_probes_are_rejected_with_the_field_named(fields, message):
    with pytest.raises(ValueError, match=message):
        LivenessProbe(ReadyCheck("tcp", 1), **{"period": 1, "timeout": 1, "failure_threshold": 1, **fields})
