"""Data faults validate their arguments before touching anything: the control URL points at a closed port, so an
action that reached for the target would raise TargetUnreachable instead of InvalidArgument."""
import pytest

from chaoslib_ext.actions.data import (
    corrupt_latest_backup, database_outage, destroy_data, restore_from_backup,
)
from chaoslib_ext.errors import InvalidArgument, TargetUnreachable
from chaos_dr_stack.backup.api import parse_restore

NOWHERE = {"target": "local", "local_control_url": "http://127.0.0.1:9"}


def test_destroy_rejects_an_unknown_scope():
    with pytest.raises(InvalidArgument, match="scope 'pvc' is not one of database, data-directory"):
        destroy_data("pvc", configuration=NOWHERE)


def test_destroy_with_a_good_scope_reaches_for_the_target():
    with pytest.raises(TargetUnreachable, match="did not answer"):
        destroy_data("database", configuration=NOWHERE)


@pytest.mark.parametrize("ttl_seconds", [0, -5, 3601, "60", True, float("nan")])
def test_outage_rejects_a_bad_ttl(ttl_seconds):
    with pytest.raises(InvalidArgument, match="ttl_seconds must be a number > 0 and <= 3600, got "):
        database_outage(ttl_seconds=ttl_seconds, configuration=NOWHERE)


def test_corruption_rejects_a_bad_mode_and_ttl():
    with pytest.raises(InvalidArgument, match="mode 'shred' is not one of truncate, flip"):
        corrupt_latest_backup(mode="shred", configuration=NOWHERE)
    with pytest.raises(InvalidArgument, match="ttl_seconds must be a number > 0 and <= 3600, got 0"):
        corrupt_latest_backup(ttl_seconds=0, configuration=NOWHERE)


def test_restore_rejects_a_bad_replay_flag_and_backup_id():
    with pytest.raises(InvalidArgument, match="replay must be true or false, got 'yes'"):
        restore_from_backup(replay="yes", configuration=NOWHERE)
    with pytest.raises(InvalidArgument, match="only_if_needed must be true or false, got 1"):
        restore_from_backup(only_if_needed=1, configuration=NOWHERE)
    with pytest.raises(InvalidArgument, match="backup_id must be a backup id"):
        restore_from_backup(backup_id="", configuration=NOWHERE)


@pytest.mark.parametrize("body, message", [
    ({"replay": "yes"}, "replay: must be true or false"),
    ({"until": -1}, "until: must be Unix seconds"),
    ({"backup_id": "../etc"}, "backup_id: must be a backup id"),
    ({"backupid": "x"}, "backupid: unknown field"),
    ([1], "body must be a JSON object"),
])
def test_the_agent_names_the_bad_restore_field(body, message):
    from fastapi import HTTPException

    with pytest.raises(HTTPException) as raised:
        parse_restore(body)
    assert raised.value.status_code == 400 and message in raised.value.detail
