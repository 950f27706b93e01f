"""Supervised child processes: start, probe readiness, kill what fails its liveness probe, restart with back-off,
count restarts, stop.

This plays the kubelet for the local stack. supervisor (PyPI) was considered and measured (see
shared/LOCAL-PARTS.md): it has no restart counter (the restart budget probe needs one), no readiness checks
(the balancer and the startup order need them), and no back-off once a process has reached RUNNING (a replica
that crashes after a few seconds would be restarted at full speed forever). It would also be a second daemon
to manage. What we need is small enough to write here, in the runner's event loop.

Children must be spawned from the event loop's thread: their parent-death signal follows the forking thread.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable

import httpx

from chaos_dr_stack.local import readiness
from chaos_dr_stack.local.components import ComponentSpec
from chaos_dr_stack.local.procs import child_preexec, log_tail
from chaos_dr_stack.local.readiness import LivenessProbe
from chaos_dr_stack.local.restart_policy import RestartPolicy, after_death

log = logging.getLogger(__name__)

STARTING, RUNNING, BACKOFF, STOPPED = "starting", "running", "backoff", "stopped"

PROBE_INTERVAL_STARTING = 0.1
"""Seconds between readiness checks until the first success: startup and recovery time is what drills measure."""
PROBE_INTERVAL_READY = 0.5
"""Seconds between readiness checks once ready, the period of the processor API service's endpoint updates."""
STOP_GRACE = 10.0
"""Seconds between SIGTERM and SIGKILL when stopping: the processor's contract is to exit within 10 s."""
LIVENESS_KILL_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL for an instance that failed its liveness probe: a process stuck that way
rarely shuts down cleanly, and the stack has been without it for the probe's whole failure window already."""


class StartFailed(RuntimeError):
    """An instance did not become ready on its first start. The message names it and ends with its log tail."""


class Instance:
    """One supervised replica: its current process, readiness and restart count.

    ``on_spawn`` is called after every spawn (the runner records pids). ``before_ready`` runs after each spawn's
    first successful check and before the instance counts as ready, e.g. to recreate topics on a broker that
    restarted empty; while it fails, the instance stays not ready.
    """

    def __init__(
        self,
        spec: ComponentSpec,
        log_path: os.PathLike,
        env: dict[str, str],
        cwd: os.PathLike,
        http: httpx.AsyncClient,
        policy: RestartPolicy = RestartPolicy(),
        on_spawn: Callable[[Instance], None] | None = None,
        before_ready: Callable[[], Awaitable[None]] | None = None,
    ):
        self.spec = spec
        self.log_path = log_path
        self._env = env
        self._cwd = cwd
        self._http = http
        self._policy = policy
        self._on_spawn = on_spawn
        self._before_ready = before_ready
        self.state = STOPPED
        self.ready = False
        self.restarts = 0
        self.started_at: float | None = None
        self.ready_at: float | None = None
        """Unix seconds when the current process first passed its readiness check."""
        self.proc: asyncio.subprocess.Process | None = None
        self.last_exit: int | None = None
        self.liveness_kills = 0
        """How many times this instance was killed for failing its liveness probe."""
        self._deaths_in_a_row = 0
        self._stopping = asyncio.Event()
        self._first_ready = asyncio.Event()
        self._exited_early: str | None = None
        self._setup_error: str | None = None
        self._task: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        if self.proc is not None and self.proc.returncode is None:
            return self.proc.pid
        return None

    def snapshot(self) -> dict:
        return {
            "name": self.name,
            "component": self.spec.component,
            "pid": self.pid,
            "started_at": self.started_at,
            "ready_at": self.ready_at,
            "restarts": self.restarts,
            "state": self.state,
            "ready": self.ready,
            "url": self.spec.url,
            "last_exit_code": self.last_exit,
            "liveness_kills": self.liveness_kills,
        }

    async def start(self) -> None:
        """Spawn and wait until ready. Raises StartFailed, with the log tail, on an early exit or a timeout."""
        self._task = asyncio.create_task(self._lifecycle(), name=f"supervise {self.name}")
        waiter = asyncio.create_task(self._first_ready.wait())
        try:
            await asyncio.wait(
                {waiter, self._task}, timeout=self.spec.ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        if self._first_ready.is_set():
            return
        if self._task.done() and self._task.exception() is not None:
            reason = f"could not be started: {self._task.exception()}"
        elif self._exited_early:
            reason = self._exited_early
        else:
            reason = f"was not ready within {self.spec.ready_timeout:g} s ({self.spec.ready.describe()})"
            if self._setup_error:
                reason += f"; it answered but {self._setup_error}"
        raise StartFailed(
            f"{self.name} {reason}; last lines of {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def send(self, sig: signal.Signals) -> int | None:
        """Send ``sig`` to the current process. Returns its pid, or None when no process is running."""
        pid = self.pid
        if pid is None:
            return None
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return None
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            # Don't route traffic to it while it dies; the supervisor sees the exit a moment later.
            self.ready = False
        return pid

    async def stop(self, grace: float = STOP_GRACE) -> None:
        self._stopping.set()
        proc = self.proc
        if proc is not None and proc.returncode is None:
            await _terminate(proc, grace, self.name)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self.ready = False
        self.state = STOPPED

    async def restart_after_stop(self) -> None:
        """Start again after ``stop()`` (a hold ended): a new process, not counted as a restart."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = asyncio.Event()
        self._first_ready = asyncio.Event()
        self._exited_early = self._setup_error = None
        self._deaths_in_a_row = 0
        await self.start()

    async def _lifecycle(self) -> None:
        first = True
        while not self._stopping.is_set():
            ran_from = time.monotonic()
            try:
                await self._spawn()
            except OSError as exc:
                if first:
                    raise
                log.error("%s could not be restarted: %s", self.name, exc)
                code = None
            else:
                became_ready = asyncio.Event()
                watchers = [asyncio.create_task(self._probe(self.proc, became_ready))]
                if self.spec.liveness is not None:
                    watchers.append(asyncio.create_task(
                        self._watch_liveness(self.proc, self.spec.liveness, became_ready)))
                code = await self.proc.wait()
                for watcher in watchers:
                    watcher.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
            self.ready = False
            self.last_exit = code
            if self._stopping.is_set():
                return
            ran_for = time.monotonic() - ran_from
            if first and not self._first_ready.is_set():
                # A start that never got ready is a broken setup, not a crash to retry: fail the start.
                self._exited_early = f"exited with code {code} after {ran_for:.1f} s, before it was ready"
                self.state = STOPPED
                return
            first = False
            self._deaths_in_a_row, delay = after_death(self._policy, self._deaths_in_a_row, ran_for)
            log.warning(
                "%s (pid %s) exited with code %s after %.1f s; restart in %.1f s",
                self.name, self.proc.pid if self.proc else None, code, ran_for, delay,
            )
            self.state = BACKOFF
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            self.restarts += 1

    async def _spawn(self) -> None:
        self.state = STARTING
        self.ready = False
        with open(self.log_path, "ab") as out:
            out.write(
                f"--- runner: starting {self.name} (restart {self.restarts}) at "
                f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode()
            )
            out.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *self.spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._cwd,
                env=self._env,
                preexec_fn=child_preexec(os.getpid(), self.spec.death_signal),
            )
        self.started_at = time.time()
        self.ready_at = None
        log.info("%s started, pid %s", self.name, self.proc.pid)
        if self._on_spawn is not None:
            self._on_spawn(self)

    async def _probe(self, proc: asyncio.subprocess.Process, became_ready: asyncio.Event) -> None:
        ready_once = False
        while proc.returncode is None:
            ok = await readiness.check(self.spec.ready, self._http)
            if ok and not ready_once and self._before_ready is not None:
                try:
                    await self._before_ready()
                except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"; remember why
                    self._setup_error = f"its setup failed: {exc}"
                    log.warning("%s answers but is not ready: %s", self.name, self._setup_error)
                    ok = False
            if ok and not ready_once:
                ready_once = True
                # Recovery probes measure from a fault to this moment, not to when they happened to look.
                self.ready_at = time.time()
                self.state = RUNNING
                log.info("%s ready, pid %s", self.name, proc.pid)
                self._first_ready.set()
                became_ready.set()
            if proc.returncode is None:
                self.ready = ok
            await asyncio.sleep(PROBE_INTERVAL_READY if ready_once else PROBE_INTERVAL_STARTING)

    async def _watch_liveness(self, proc: asyncio.subprocess.Process, probe: LivenessProbe,
                              became_ready: asyncio.Event) -> None:
        await became_ready.wait()  # never set if this process dies first: the lifecycle then cancels this task
        failures = 0
        while proc.returncode is None:
            await asyncio.sleep(probe.period)
            if self._stopping.is_set() or proc.returncode is not None:
                return
            alive = await readiness.check(probe.check, self._http, timeout=probe.timeout)
            if self._stopping.is_set():
                return  # a stop is under way: its own SIGTERM is the one to wait for
            if alive:
                failures = 0
                continue
            failures += 1
            if failures < probe.failure_threshold:
                continue
            self.liveness_kills += 1
            self.ready = False
            log.error("%s (pid %s) failed its liveness probe (%s): killing it; it will be restarted",
                      self.name, proc.pid, probe.describe())
            await _terminate(proc, LIVENESS_KILL_GRACE, self.name)
            return


async def _terminate(proc: asyncio.subprocess.Process, grace: float, name: str) -> None:
    """SIGTERM (and SIGCONT, so a stopped process can act on it), then SIGKILL after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGCONT)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        log.warning("%s (pid %s) ignored SIGTERM for %g s: SIGKILL", name, proc.pid, grace)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
