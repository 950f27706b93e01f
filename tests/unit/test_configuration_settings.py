"""Settings resolved in one place: the processor's database and the SLO spec."""
from __future__ import annotations

from pathlib import Path

import pytest

from chaoslib_ext.errors import TargetMisconfigured
from chaoslib_ext.slo.spec import DEFAULT_SPEC_PATH, SPEC_ENV, configured_path
from chaoslib_ext.targets import from_configuration
from probes._clients import mongo


def test_the_database_is_a_setting_read_by_the_probes_client():
    with from_configuration({"local_control_url": "http://127.0.0.1:9", "database": "trading"}) as target:
        assert target.database == "trading"
    with from_configuration({"local_control_url": "http://127.0.0.1:9"}) as target:
        assert target.database == "ca3"
        target.mongo_uri = lambda: "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100"
        client, db = mongo(target)
        client.close()
        assert db.name == "ca3"


@pytest.mark.parametrize("name", ["ca3.events", "", "a b", "x" * 64, 3])
def test_a_database_name_mongodb_refuses_is_refused_by_name(name):
    with pytest.raises(TargetMisconfigured, match="database must be a MongoDB database name"):
        from_configuration({"database": name})


def test_the_slo_spec_comes_from_the_configuration_then_the_environment_then_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv(SPEC_ENV, raising=False)
    assert configured_path(None) == DEFAULT_SPEC_PATH and DEFAULT_SPEC_PATH.is_file()
    monkeypatch.setenv(SPEC_ENV, str(tmp_path / "env.yaml"))
    assert configured_path({}) == tmp_path / "env.yaml"
    assert configured_path({"slo_spec": "mine.yaml"}) == Path("mine.yaml")


def test_every_local_target_guards_its_blast_radius_as_the_gate_does(monkeypatch):
    monkeypatch.delenv("GAMEDAY_ALLOWED_HOSTS", raising=False)
    with pytest.raises(TargetMisconfigured, match="refusing the local target at http://10.1.2.3:18000: 10.1.2.3 is not "
                                                  "a loopback address and not in GAMEDAY_ALLOWED_HOSTS"):
        from_configuration({"local_control_url": "http://10.1.2.3:18000"})
    monkeypatch.setenv("GAMEDAY_ALLOWED_HOSTS", "10.1.2.3")
    with from_configuration({"local_control_url": "http://10.1.2.3:18000/"}) as target:
        assert target.control_url == "http://10.1.2.3:18000"
    with pytest.raises(TargetMisconfigured, match="is not an http"):
        from_configuration({"local_control_url": "ftp://127.0.0.1"})
