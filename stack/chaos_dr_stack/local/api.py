"""Start, stop and inspect a local stack from another process: what `gameday stack up|down|status` and the
tests use. The stack itself is `python -m chaos_dr_stack.local.runner`, a detached daemon; this module only talks to it
through its state directory (runner.json, pids.json, logs/) and its control API.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from chaos_dr_stack.local.layout import (
    DISTRIBUTION_ROOT,
    RUNNER_MODULE,
    STATE_DIR_ENV,
    StackLayout,
    StateFiles,
    ephemeral_port_range,
)
from chaos_dr_stack.local.ports import STACK_PORT_SPAN, free_base_port
from chaos_dr_stack.local.procs import (
    cmdline_matches,
    log_tail,
    pid_alive,
    processes_marked,
    read_cmdline,
    read_json,
    signal_pid,
    stop_pids,
)

__all__ = [
    "LocalStack", "StackStartError", "StackStopError", "pick_base_port", "stack_status", "start_stack", "stop_stack",
]

POLL_INTERVAL = 0.1
"""Seconds between /status polls while waiting for a stack to become ready."""
RUNNER_STOP_GRACE = 20.0
"""Seconds a runner gets to stop its children (each has 10 s between SIGTERM and SIGKILL) before it is killed."""


class StackStartError(RuntimeError):
    """The stack did not come up. The message carries the runner's own error and the tail of its log."""


class StackStopError(RuntimeError):
    """Processes of a stack were still alive after it was stopped."""


def start_stack(
    base_port: int,
    state_dir: Path,
    rate: float = 20,
    timeout: float = 120,
    runner_args: Sequence[str] = (),
    keep_metrics: bool = False,
) -> dict:
    """Start a runner for ``base_port`` in ``state_dir`` and wait until every component is ready.

    Returns the control API's /endpoints. Raises StackStartError when the runner exits, or is not ready within
    ``timeout`` seconds; in that case nothing of the stack is left running. ``runner_args`` are extra runner
    options, for development. ``keep_metrics`` keeps the Prometheus and Alertmanager data an earlier stack left in
    ``state_dir`` (runner flag ``--keep-metrics``); by default the new stack starts both with empty stores.
    """
    layout = StackLayout(base_port, Path(state_dir))
    files = layout.files
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    files.logs_dir.mkdir(parents=True, exist_ok=True)
    previous = read_json(files.runner_json)
    if previous and _runner_alive(previous.get("pid")):
        raise StackStartError(
            f"a stack is already running in {layout.state_dir} (runner pid {previous['pid']}, "
            f"{previous.get('control_url')}); stop it first"
        )
    env = dict(os.environ)
    env[STATE_DIR_ENV] = str(layout.state_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(DISTRIBUTION_ROOT), env.get("PYTHONPATH")) if p)
    argv = [
        sys.executable, "-m", RUNNER_MODULE,
        "--base-port", str(base_port), "--state-dir", str(layout.state_dir), "--rate", f"{rate:g}",
        *(["--keep-metrics"] if keep_metrics else []), *runner_args,
    ]
    runner_log = files.log_path("runner")
    with open(runner_log, "ab") as out:
        # Its own session: the runner must outlive this process and its terminal, like any daemon.
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=layout.state_dir, env=env, start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    status: dict = {}
    with httpx.Client(base_url=layout.control_url, timeout=1.0) as http:
        while True:
            code = proc.poll()
            if code is not None:
                raise StackStartError(_failure_message(f"the runner exited with code {code}", runner_log))
            try:
                status = http.get("/status").json()
                if status.get("ready"):
                    return http.get("/endpoints").json()
            except (httpx.HTTPError, ValueError):
                pass  # not listening yet
            if time.monotonic() >= deadline:
                waiting_for = [c["name"] for c in status.get("components", []) if not c.get("ready")]
                _stop_runner(proc.pid)
                _stop_children(files)
                raise StackStartError(
                    _failure_message(
                        f"the stack was not ready within {timeout:g} s"
                        + (f" (not ready: {', '.join(waiting_for)})" if waiting_for else ""),
                        runner_log,
                    )
                )
            time.sleep(POLL_INTERVAL)


def stop_stack(state_dir: Path, timeout: float = 30) -> list[str]:
    """Stop the stack in ``state_dir``: ask the runner to shut down (SIGTERM if it does not answer, SIGKILL after
    ``timeout`` seconds), then stop any recorded child that is still alive, which happens only after a runner
    crash. A pid is signalled only while /proc shows the command we started under it.

    Returns the names of what was running: 'runner' and instance names such as 'processor-0'.
    """
    files = StateFiles(Path(state_dir))
    info = read_json(files.runner_json) or {}
    pids = read_json(files.pids_json) or {}
    stopped = [name for name, pid in _live_children(pids)]
    runner_pid = info.get("pid") or (pids.get("runner") or {}).get("pid")
    if _runner_alive(runner_pid):
        stopped.insert(0, "runner")
        control_url = info.get("control_url")
        asked = False
        if control_url:
            try:
                asked = httpx.post(f"{control_url}/shutdown", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                pass
        if not asked:
            signal_pid(runner_pid, signal.SIGTERM)
        if not _wait_gone([runner_pid], timeout):
            signal_pid(runner_pid, signal.SIGKILL)
            _wait_gone([runner_pid], 5)
    _stop_children(files)
    if files.runner_json.exists() and not _runner_alive(runner_pid):
        files.runner_json.unlink()  # left behind by a runner that was killed
    return stopped


def stack_status(state_dir: Path) -> dict | None:
    """The runner's /status, or None when no stack has been started in ``state_dir`` (no runner.json).

    When runner.json exists but the runner does not answer, returns ``{"ready": False, "error": ...}``.
    """
    info = read_json(Path(state_dir) / "runner.json")
    if not info:
        return None
    try:
        return httpx.get(f"{info['control_url']}/status", timeout=2.0).json()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        alive = _runner_alive(info.get("pid"))
        return {
            "ready": False,
            "runner_pid": info.get("pid"),
            "runner_alive": alive,
            "error": f"runner at {info.get('control_url')} did not answer: {exc}"
            + ("" if alive else "; it is not running (stop_stack cleans up after it)"),
        }


class LocalStack:
    """A whole local stack for the length of a ``with`` block, on a free base port and a temporary state
    directory unless given. On exit it stops the stack and raises StackStopError if any of its processes is
    still alive."""

    def __init__(
        self,
        base_port: int | None = None,
        state_dir: Path | None = None,
        rate: float = 20,
        timeout: float = 120,
        runner_args: Sequence[str] = (),
        keep_metrics: bool = False,
    ):
        self.base_port = base_port
        self.keep_metrics = keep_metrics
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.rate = rate
        self.timeout = timeout
        self.runner_args = tuple(runner_args)
        self.endpoints: dict[str, str] = {}
        self.started_in: float | None = None
        """Seconds start_stack took."""
        self._own_dir = state_dir is None

    def __enter__(self) -> LocalStack:
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="local-stack-"))
        if self.base_port is None:
            self.base_port = pick_base_port()
        t0 = time.monotonic()
        self.endpoints = start_stack(self.base_port, self.state_dir, self.rate, self.timeout, self.runner_args,
                                     keep_metrics=self.keep_metrics)
        self.started_in = time.monotonic() - t0
        return self

    def __exit__(self, *exc_info) -> None:
        stop_stack(self.state_dir)
        leftovers = stack_processes(self.state_dir)
        if leftovers:
            raise StackStopError(
                f"stack in {self.state_dir} left processes alive after stop: "
                + ", ".join(f"{pid} ({' '.join(read_cmdline(pid) or ['?'])[:80]})" for pid in leftovers)
            )
        if self._own_dir and exc_info[0] is None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    @property
    def control_url(self) -> str:
        return self.endpoints["control"]

    def pids(self) -> dict[str, int]:
        """Instance name → pid as last recorded in pids.json, with 'runner'."""
        recorded = read_json(Path(self.state_dir) / "pids.json") or {}
        pids = {name: c["pid"] for name, c in (recorded.get("children") or {}).items()}
        if recorded.get("runner"):
            pids["runner"] = recorded["runner"]["pid"]
        return pids


def pick_base_port() -> int:
    """A free base port, below the ephemeral range when there is room (see layout.ephemeral_port_range)."""
    low = 20000
    ephemeral_low, _ = ephemeral_port_range()
    if ephemeral_low - low >= 100 * STACK_PORT_SPAN:
        return free_base_port(low=low, high=ephemeral_low)
    return free_base_port()


def stack_processes(state_dir: Path) -> list[int]:
    """Live pids that belong to the stack in ``state_dir``: recorded in pids.json, or marked in their environment."""
    recorded = read_json(Path(state_dir) / "pids.json") or {}
    live = {pid for _, pid in _live_children(recorded)}
    runner = recorded.get("runner") or {}
    if runner.get("pid") and _runner_alive(runner["pid"]):
        live.add(runner["pid"])
    live.update(processes_marked(STATE_DIR_ENV, str(Path(state_dir).resolve())))
    return sorted(live)


def _runner_alive(pid: object) -> bool:
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    command = read_cmdline(pid) or []
    return RUNNER_MODULE in command


def _live_children(pids: dict) -> list[tuple[str, int]]:
    live = []
    for name, child in (pids.get("children") or {}).items():
        pid, argv = child.get("pid"), child.get("argv")
        if isinstance(pid, int) and pid_alive(pid) and cmdline_matches(read_cmdline(pid), argv or []):
            live.append((name, pid))
    return live


def _stop_children(files: StateFiles) -> None:
    live = _live_children(read_json(files.pids_json) or {})
    if live:
        stop_pids([pid for _, pid in live])


def _stop_runner(pid: int) -> None:
    signal_pid(pid, signal.SIGTERM)
    if not _wait_gone([pid], RUNNER_STOP_GRACE):
        signal_pid(pid, signal.SIGKILL)
        _wait_gone([pid], 5)


def _wait_gone(pids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _failure_message(summary: str, runner_log: Path) -> str:
    """The runner prints "runner: error: ..." (with the failing component's log tail) as its last words."""
    lines = log_tail(runner_log, 200).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("runner: error: ")]
    if starts:
        return f"{summary}: " + "\n".join(lines[starts[-1]:]).removeprefix("runner: error: ")
    return f"{summary}\n--- last lines of {runner_log} ---\n" + "\n".join(lines[-40:])
