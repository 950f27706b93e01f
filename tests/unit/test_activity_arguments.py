"""Arguments are validated before any side effect: the control URL points at a closed port, so an activity that
reached for the target would raise TargetUnreachable instead of InvalidArgument."""
import pytest

from chaoslib_ext.actions.pods import kill_processor_pods, wait_for_processor_replicas
from chaoslib_ext.errors import InvalidArgument, TargetMisconfigured, TargetUnreachable
from chaoslib_ext.targets import from_configuration
from probes.processing import end_to_end_lag_seconds
from probes.restarts import processor_restarts

NOWHERE = {"target": "local", "local_control_url": "http://127.0.0.1:9"}


@pytest.mark.parametrize("count", [0, -1, 1.5, "2", True])
def test_kill_rejects_a_bad_count(count):
    with pytest.raises(InvalidArgument, match=f"count must be a whole number >= 1, got {count!r}"):
        kill_processor_pods(count=count, configuration=NOWHERE)


def test_kill_rejects_a_bad_signal():
    with pytest.raises(InvalidArgument, match="signal must be one of SIGKILL, SIGTERM, got 'SIGHUP'"):
        kill_processor_pods(signal="SIGHUP", configuration=NOWHERE)


def test_kill_with_good_arguments_reaches_for_the_target():
    with pytest.raises(TargetUnreachable, match=r"http://127.0.0.1:9 did not answer GET /instances"):
        kill_processor_pods(configuration=NOWHERE)


def test_probe_arguments_are_checked_first():
    with pytest.raises(InvalidArgument, match="window must be a Prometheus duration"):
        processor_restarts(window="1 day", configuration=NOWHERE)
    with pytest.raises(InvalidArgument, match="q must be a number > 0 and <= 1, got 95"):
        end_to_end_lag_seconds(q=95, configuration=NOWHERE)
    with pytest.raises(InvalidArgument, match="timeout must be a number > 0, got 0"):
        wait_for_processor_replicas(timeout=0, configuration=NOWHERE)


def test_unknown_target_is_named():
    with pytest.raises(TargetMisconfigured, match="unknown target 'openstack'"):
        from_configuration({"target": "openstack"})


def test_control_url_must_be_http():
    with pytest.raises(TargetMisconfigured, match="'127.0.0.1:18000' is not an http"):
        from_configuration({"local_control_url": "127.0.0.1:18000"})


def test_the_kill_takes_the_replicas_restarted_least_often_and_picks_at_random_among_equals():
    from chaoslib_ext.actions.pods import least_restarted
    from chaoslib_ext.targets.base import Instance

    def replica(name: str, restarts: int) -> Instance:
        return Instance(name, "processor", 1, 0.0, restarts, True, "running")

    ready = [replica("a", 2), replica("b", 0), replica("c", 1), replica("d", 0)]
    assert [i.name for i in least_restarted(ready, 3)][2] == "c"
    firsts = {least_restarted(ready, 1)[0].name for _ in range(200)}
    assert firsts == {"b", "d"}
