"""SecantusDB standing in for MongoDB on the offline kind target (python -m chaos_dr_stack.mongo_standin): a real
server that drivers accept under the replica-set URI deploy/k8s gives the stack, its readiness answer, and the
init Job's check."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from pymongo import MongoClient

from chaos_dr_stack.local.ports import free_base_port

pytestmark = pytest.mark.integration

STANDIN = [sys.executable, "-m", "chaos_dr_stack.mongo_standin"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*STANDIN, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def member(tmp_path_factory):
    port = free_base_port(span=1)
    host = f"127.0.0.1:{port}"
    data = tmp_path_factory.mktemp("standin") / "db"
    log = data.parent / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([*STANDIN, "serve", "--replica-set", "rs0", "--member-host", host,
                                   "--port", str(port), "--dbpath", str(data)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while run("ready", "--host", host, "--timeout", "1").returncode != 0:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"not ready in 30 s: {log.read_text()}"
            time.sleep(0.3)
        yield host
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0, log.read_text()


def test_a_driver_accepts_it_under_the_replica_set_uri_and_writes_survive_a_new_client(member):
    with MongoClient(f"mongodb://{member}/?replicaSet=rs0", serverSelectionTimeoutMS=5000) as client:
        client.gameday.events.insert_one({"event_id": "e-1"})
        assert client.topology_description.topology_type_name == "ReplicaSetWithPrimary"
        assert client.admin.command("hello")["hosts"] == [member]
    with MongoClient(f"mongodb://{member}/?replicaSet=rs0", serverSelectionTimeoutMS=5000) as client:
        assert client.gameday.events.count_documents({"event_id": "e-1"}) == 1


def test_another_set_name_in_the_uri_finds_no_server(member):
    with MongoClient(f"mongodb://{member}/?replicaSet=other", serverSelectionTimeoutMS=1500) as client:
        with pytest.raises(Exception, match="other"):
            client.admin.command("ping")


def test_the_init_check_passes_for_the_set_and_names_what_is_wrong_otherwise(member):
    ok = run("check-member", "--host", member, "--replica-set", "rs0", "--timeout", "5")
    assert ok.returncode == 0, ok.stderr
    assert "nothing to initiate" in ok.stdout
    wrong = run("check-member", "--host", member, "--replica-set", "rs1", "--timeout", "1")
    assert wrong.returncode == 1
    assert "is in replica set 'rs0', not 'rs1'" in wrong.stderr


def test_liveness_passes_while_its_storage_answers_and_fails_saying_so_where_nothing_listens(member):
    alive = run("live", "--host", member, "--timeout", "5")
    assert (alive.returncode, alive.stderr) == (0, "")
    port = free_base_port(span=1)
    dead = run("live", "--host", f"127.0.0.1:{port}", "--timeout", "0.5")
    assert dead.returncode == 1
    assert f"not live: 127.0.0.1:{port}: listDatabases did not answer within 0.5 s" in dead.stderr


def test_readiness_fails_where_nothing_listens():
    port = free_base_port(span=1)
    result = run("ready", "--host", f"127.0.0.1:{port}", "--timeout", "0.5")
    assert result.returncode == 1
    assert f"not ready: 127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize("bad", ["mongo-0", "mongo-0:port", ":27017", "mongo-0:70000"])
def test_a_member_host_without_a_port_is_refused(bad):
    result = run("serve", "--replica-set", "rs0", "--member-host", bad)
    assert result.returncode == 2
    assert "expected HOST:PORT" in result.stderr
