"""Shared fixtures: one real local stack for the session, and a guarantee that no stack process outlives it."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaos_dr_stack.local.api import LocalStack, stack_processes
from chaos_dr_stack.local.components import MissingBinary, find_binaries
from chaos_dr_stack.local.layout import STATE_DIR_ENV
from chaos_dr_stack.local.procs import processes_with_env, read_cmdline

SESSION_STACK_RATE = 5
"""Events per second per producer in the session stack: enough to see data flow, little enough for 2 cores."""

SHARED_WORKER_MODULES = {
    "test_services.py", "test_ai_decision_service.py", "test_market_data_service.py", "test_provider_simulator.py",
    "test_backup_follower.py", "test_poison_writes.py", "test_kafka_image_entrypoint.py", "test_mongo_standin.py",
    "test_mongo_liveness.py",
}
"""Integration modules that start a few real processes, not a stack, and judge no sub-second timing: they may run
beside the stack tests. (test_provider_failover_truth.py stays with the stacks: it checks a 250 ms agreement.)"""


def starts_a_stack(nodeid: str) -> bool:
    directory, _, rest = nodeid.partition("/")[2].partition("/")
    return nodeid.startswith("tests/") and directory in ("e2e", "integration") and \
        rest.split("::")[0] not in SHARED_WORKER_MODULES


RUN_LATE = ("tests/e2e/test_gate_on_local_stack.py",)
"""The whole game day on one stack judges CUJ-1's latency during its faults, and a CPU shared with the other
worker's tests is what it then measures (a partition's served p95 read 0.355 s beside them, 0.006 s without): it
runs after the other stack tests, when the other worker has long finished."""
SESSION_STACK_MODULES = ("tests/integration/test_slo_live.py", "tests/integration/test_poison_events.py",
                         "tests/integration/test_runner.py")
"""They use the session stack, which lives until the session ends: they run last, so it never runs beside another."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: 2 if item.nodeid.startswith(SESSION_STACK_MODULES) else
               1 if item.nodeid.startswith(RUN_LATE) else 0)  # stable: the rest keeps its order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`make test` runs `pytest -n 2`: every test that starts a whole stack goes to one worker, in collection order,
    and the unit tests and the light integration modules share the other. Two stacks at once on 2 cores (tried:
    four, with a session stack per worker) pushed the load average past 20, and stack starts and timing tests
    failed. (xdist's own `--dist loadgroup` marks do nothing under pytest 9: it renames a node attribute pytest 9
    no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class StacksOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "stacks" if starts_a_stack(nodeid) else nodeid

    return StacksOnOneWorker(config, log)


@pytest.fixture(scope="session")
def stack_binaries():
    """Skip, saying what to install, on a machine without the stack's programs."""
    try:
        return find_binaries()
    except MissingBinary as exc:
        pytest.skip(f"the local stack cannot run here: {exc}")


@pytest.fixture(scope="session", autouse=True)
def stack_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """Hands out state directories under the session's temp dir; every stack a test starts must use one.
    At the end of the session, fails if any process of such a stack is still alive, found by its pid record
    or by the state-directory marker in its environment (which grandchildren inherit too)."""
    basetemp = str(tmp_path_factory.getbasetemp().resolve())
    made: list[Path] = []

    def new_state_dir(name: str = "stack") -> Path:
        path = Path(tmp_path_factory.mktemp(name, numbered=True)).resolve()
        made.append(path)
        return path

    yield new_state_dir

    alive = {pid: value for pid, value in processes_with_env(STATE_DIR_ENV).items() if value.startswith(basetemp)}
    for state_dir in made:
        alive.update({pid: str(state_dir) for pid in stack_processes(state_dir)})
    assert not alive, "processes started by the tests are still alive: " + "; ".join(
        f"pid {pid} of stack {where}: {' '.join(read_cmdline(pid) or ['?'])[:100]}" for pid, where in alive.items()
    )


@pytest.fixture(scope="session")
def local_stack(stack_binaries, stack_dirs) -> Iterator[LocalStack]:
    """The whole stack, started once: ``.endpoints`` (the control API's /endpoints), ``.base_port``,
    ``.state_dir``, ``.started_in`` (seconds start_stack took) and ``.pids()``."""
    with LocalStack(state_dir=stack_dirs("session-stack"), rate=SESSION_STACK_RATE) as stack:
        yield stack
