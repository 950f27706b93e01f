"""PUT /faults/corrupt-backup through the agent's real HTTP API on a free port: a backup it can damage, or a 409
naming why, never a 500; and the framework's caller reports the 409 in the agent's own words."""
from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import httpx
import pytest
import uvicorn

from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets.stack_http import call_backup_agent
from chaos_dr_stack.backup.api import create_app
from chaos_dr_stack.backup.corruption import CorruptionFault
from chaos_dr_stack.backup.restore import END_OF_LOG, TargetPoint
from chaos_dr_stack.backup.store import BackupStore
from test_backup_store import make_backup

NOW = TargetPoint(0, END_OF_LOG)


@pytest.fixture
def store(tmp_path):
    return BackupStore(tmp_path / "store")


@pytest.fixture
def agent_url(store):
    """The agent's API over a stand-in agent whose corruption fault is the real one, on the real store."""
    fault = CorruptionFault(store.backups_dir)
    agent = SimpleNamespace(corruption=fault, corrupt=lambda mode, ttl: fault.apply(store, NOW, mode, ttl))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(agent), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the agent's API did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    fault.heal()
    server.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive(), "the agent's API did not stop"


def test_an_empty_newest_backup_is_passed_over_for_one_with_data(store, agent_url):
    make_backup(store, "b1", (100, 1))
    make_backup(store, "b2", (200, 1), collections={})
    response = httpx.put(f"{agent_url}/faults/corrupt-backup", json={"mode": "truncate", "ttl_seconds": 60})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["backup_id"], body["file"]) == ("b1", "events.bson")
    assert body["passed_over"] == [
        "b2: no data file to damage (database ca3 had no documents when it was taken; collections: none)"]


def test_no_backup_with_data_is_a_409_naming_each_backup_and_the_caller_says_so(store, agent_url):
    make_backup(store, "b1", (100, 1), collections={"events": b""})
    response = httpx.put(f"{agent_url}/faults/corrupt-backup", json={"mode": "truncate", "ttl_seconds": 60})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "no backup to corrupt: no backup a restore could choose has a data file to damage: b1: no data file to "
        "damage (database ca3 had no documents when it was taken; collections: events)")
    with pytest.raises(InvalidArgument) as refused:
        call_backup_agent(agent_url, "PUT", "/faults/corrupt-backup", 5.0, json={"mode": "flip", "ttl_seconds": 60})
    assert str(refused.value) == (
        "backup agent refused PUT /faults/corrupt-backup (409): no backup to corrupt: no backup a restore could "
        "choose has a data file to damage: b1: no data file to damage (database ca3 had no documents when it was "
        "taken; collections: events)")


def test_an_empty_store_is_a_409_too(agent_url):
    response = httpx.put(f"{agent_url}/faults/corrupt-backup", json={"mode": "flip", "ttl_seconds": 60})
    assert response.status_code == 409
    assert response.json()["detail"].startswith("no backup to corrupt: no backup was taken before the target point")
