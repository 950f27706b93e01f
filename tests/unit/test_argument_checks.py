"""The one argument check every action and probe uses: the message names the argument, the value and the range."""
from __future__ import annotations

import math

import pytest

from chaoslib_ext.arguments import flag, number, whole_number
from chaoslib_ext.errors import InvalidArgument


@pytest.mark.parametrize("value, bounds, message", [
    (0, {"greater_than": 0, "at_most": 3600}, "ttl_seconds must be a number > 0 and <= 3600, got 0"),
    (3601, {"greater_than": 0, "at_most": 3600}, "ttl_seconds must be a number > 0 and <= 3600, got 3601"),
    (-1, {"at_least": 0, "at_most": 1}, r"ttl_seconds must be a number within \[0, 1\], got -1"),
    (0.5, {"at_least": 1}, "ttl_seconds must be a number >= 1, got 0.5"),
    (True, {}, "ttl_seconds must be a number, got True"),
    ("5", {}, "ttl_seconds must be a number, got '5'"),
    (math.nan, {}, "ttl_seconds must be a number, got nan"),
    (math.inf, {"at_most": 10}, "ttl_seconds must be a number <= 10, got inf"),
])
def test_a_refused_number_names_itself_its_value_and_its_range(value, bounds, message):
    with pytest.raises(InvalidArgument, match=message):
        number("ttl_seconds", value, **bounds)


def test_numbers_within_their_bounds_come_back_as_floats():
    assert number("ratio", 1, at_least=0, at_most=1) == 1.0 and isinstance(number("ratio", 1), float)
    assert number("safeguard limit", "2.5", greater_than=0, text_allowed=True) == 2.5
    with pytest.raises(InvalidArgument, match="safeguard limit must be a number > 0, got 'soon'"):
        number("safeguard limit", "soon", greater_than=0, text_allowed=True)


def test_whole_numbers_and_flags():
    assert whole_number("trials", 3, at_least=1, at_most=100) == 3
    for bad in (0, 2.0, True, 101):
        with pytest.raises(InvalidArgument, match=rf"trials must be a whole number within \[1, 100\], got {bad!r}"):
            whole_number("trials", bad, at_least=1, at_most=100)
    assert flag("wait", False) is False
    with pytest.raises(InvalidArgument, match="wait must be true or false, got 'yes'"):
        flag("wait", "yes")


def test_one_of_lists_what_is_allowed():
    from chaoslib_ext.targets import kill_signal

    assert kill_signal("SIGTERM") == "SIGTERM"
    for bad in ("SIGSTOP", None, True):
        with pytest.raises(InvalidArgument, match=f"signal must be one of SIGKILL, SIGTERM, got {bad!r}"):
            kill_signal(bad)


def test_an_old_argument_name_still_works_for_a_release_and_says_so(caplog):
    from chaoslib_ext.actions.network import partition_kafka
    from chaoslib_ext.actions.providers import provider_outage_trials
    from chaoslib_ext.errors import TargetUnreachable

    nowhere = {"local_control_url": "http://127.0.0.1:9"}
    with pytest.warns(DeprecationWarning, match="duration is deprecated and will be removed in the next release: "
                                                "use ttl_seconds"):
        with pytest.raises(TargetUnreachable):
            partition_kafka(duration=20, configuration=nowhere)
    assert "duration is deprecated" in caplog.text
    with pytest.warns(DeprecationWarning, match="outage_seconds is deprecated"):
        with pytest.raises(InvalidArgument, match="ttl_seconds must be a number > 0 and <= 3600, got 0"):
            provider_outage_trials("alpaca", outage_seconds=0, configuration=nowhere)
    with pytest.raises(InvalidArgument, match="give ttl_seconds only: duration is its old name"):
        partition_kafka(ttl_seconds=10, duration=20, configuration=nowhere)
