"""The runner's liveness probe on a real SecantusDB: a database that runs but no longer answers is killed and
restarted, counted, with what it had acknowledged still there; one that answers is left alone."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import replace

import httpx
import pytest
from pymongo import MongoClient

from chaos_dr_stack.local import readiness
from chaos_dr_stack.local.components import build_specs
from chaos_dr_stack.local.layout import STATE_DIR_ENV, StackLayout
from chaos_dr_stack.local.ports import free_base_port
from chaos_dr_stack.local.readiness import LivenessProbe, ReadyCheck
from chaos_dr_stack.local.restart_policy import RestartPolicy
from chaos_dr_stack.local.supervisor import Instance

pytestmark = pytest.mark.integration

FAST_LIVENESS = dict(period=0.3, timeout=1.0, failure_threshold=3)
"""The stack's probe in miniature: the same check, so a frozen server is judged in 3-4 s instead of 30-60 s."""


def mongo_spec(stack_binaries, state_dir):
    """The stack's own database spec (argv, readiness, liveness check), on a port of its own."""
    layout = StackLayout(base_port=free_base_port(), state_dir=state_dir)
    spec = next(s for s in build_specs(layout, stack_binaries, 1, kafka_argvs=[["kafka"]] * layout.kafka_brokers)
                if s.name == "mongo")
    assert spec.liveness is not None and spec.liveness.check == ReadyCheck("mongo-storage", layout.mongo_port)
    return replace(spec, liveness=LivenessProbe(spec.liveness.check, **FAST_LIVENESS)), layout


async def supervised(spec, state_dir, scenario):
    async with httpx.AsyncClient() as http:
        instance = Instance(spec, state_dir / "mongo.log", {**os.environ, STATE_DIR_ENV: str(state_dir)}, state_dir,
                            http, RestartPolicy(initial_delay=0.2))
        await instance.start()
        try:
            return await scenario(instance)
        finally:
            await instance.stop()


async def wait_until(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not {what} within {timeout} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def test_a_frozen_database_is_killed_and_restarted_with_its_writes(stack_binaries, stack_dirs, caplog):
    state_dir = stack_dirs("liveness")
    spec, layout = mongo_spec(stack_binaries, state_dir)

    async def freeze_it(instance: Instance) -> dict:
        with MongoClient(layout.mongo_uri, serverSelectionTimeoutMS=5000) as client:
            client.ca3.events.insert_one({"_id": "before-the-freeze"})
        first_pid = instance.pid
        assert await readiness.check(spec.liveness.check, instance._http, timeout=2), "a healthy server fails it"
        os.kill(first_pid, signal.SIGSTOP)
        killed_after = await wait_until(lambda: instance.liveness_kills == 1, 15, "killed for failing liveness")
        back_after = await wait_until(lambda: instance.ready and instance.pid not in (None, first_pid), 30,
                                      "ready again")
        print(f"frozen SecantusDB: killed {killed_after:.2f} s after SIGSTOP, ready again {back_after:.2f} s later")
        with MongoClient(layout.mongo_uri, serverSelectionTimeoutMS=5000) as client:
            kept = client.ca3.events.count_documents({"_id": "before-the-freeze"})
        await asyncio.sleep(3 * FAST_LIVENESS["period"] * FAST_LIVENESS["failure_threshold"])
        return {"killed_after": killed_after, "kept": kept, "first_pid": first_pid, **instance.snapshot()}

    with caplog.at_level(logging.ERROR, logger="chaos_dr_stack.local.supervisor"):
        result = asyncio.run(supervised(spec, state_dir, freeze_it))
    threshold, period, timeout = (FAST_LIVENESS[k] for k in ("failure_threshold", "period", "timeout"))
    # A frozen server accepts the connection and never answers: each failed check takes its whole timeout.
    assert threshold * timeout <= result["killed_after"] <= threshold * (period + timeout) + 2, result
    assert result["kept"] == 1, "an acknowledged write did not survive the liveness kill"
    # The restarted server answers: no second kill in the three windows after it came back.
    assert (result["liveness_kills"], result["restarts"]) == (1, 1), result
    assert [r.getMessage() for r in caplog.records if "liveness" in r.getMessage()] == [
        f"mongo (pid {result['first_pid']}) failed its liveness probe (mongo listDatabases on "
        f"127.0.0.1:{layout.mongo_port} within 1 s, failing 3 times in a row 0.3 s apart): killing it; "
        f"it will be restarted"]


def test_a_healthy_database_is_never_killed(stack_binaries, stack_dirs):
    state_dir = stack_dirs("liveness")
    spec, layout = mongo_spec(stack_binaries, state_dir)

    async def watch_it(instance: Instance) -> dict:
        with MongoClient(layout.mongo_uri, serverSelectionTimeoutMS=5000) as client:
            for i in range(200):
                client.ca3.events.insert_one({"_id": f"e-{i}"})
        await asyncio.sleep(2 * FAST_LIVENESS["period"] * FAST_LIVENESS["failure_threshold"])
        return instance.snapshot()

    result = asyncio.run(supervised(spec, state_dir, watch_it))
    assert (result["liveness_kills"], result["restarts"], result["state"]) == (0, 0, "running"), result
