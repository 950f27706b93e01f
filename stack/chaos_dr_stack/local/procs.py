"""Process plumbing shared by the runner and the client API: child setup, liveness, identity, files.

Everything here addresses a process by its pid, and checks /proc/<pid>/cmdline before signalling a pid that
we did not just spawn, because pids are reused. Nothing is ever found or killed by name.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1

try:
    # Resolved in the parent: the child between fork and exec should run as little Python as it can.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None


def child_preexec(parent_pid: int, death_signal: int = signal.SIGTERM):
    """A preexec_fn that puts the child in its own process group and ties its life to the runner's.

    Own group: a Ctrl-C in the runner's terminal reaches the runner only, which then stops the children in order.
    PR_SET_PDEATHSIG: if the runner is SIGKILLed, the kernel sends each child ``death_signal``, so nothing lives
    on.
    The signal follows the thread that forked, so children must be spawned from the event loop's thread.
    """

    def setup() -> None:
        os.setpgid(0, 0)
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
            if os.getppid() != parent_pid:
                # The runner died between fork and prctl: the kernel will never send the signal.
                os._exit(1)

    return setup


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process. Reaps it first if it is our own child, and treats a zombie as dead."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the command, which is in parentheses and may itself contain spaces or ')'.
    return stat[stat.rindex(")") + 2 : stat.rindex(")") + 3] not in ("Z", "X")


def read_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def cmdline_matches(actual: Sequence[str] | None, started: Sequence[str]) -> bool:
    """Is ``actual`` (from /proc) the command we started as ``started``?

    A script started by path shows up as ``<interpreter> <script> args...``, so compare the arguments as a
    suffix, and the program by its file name anywhere in the first two words.
    """
    if not actual or not started:
        return False
    args = list(started[1:])
    if args and list(actual[-len(args) :]) != args:
        return False
    program = os.path.basename(started[0])
    return any(os.path.basename(word) == program for word in actual[:2])


def signal_pid(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def stop_pids(pids: Sequence[int], grace: float = 10.0) -> list[int]:
    """SIGTERM each pid, wait up to ``grace`` seconds for all of them, SIGKILL the rest. Returns the pids signalled."""
    signalled = [pid for pid in pids if pid_alive(pid) and signal_pid(pid, signal.SIGTERM)]
    for pid in signalled:
        signal_pid(pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    deadline = time.monotonic() + grace
    while any(pid_alive(pid) for pid in signalled) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in signalled:
        if pid_alive(pid):
            signal_pid(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(pid_alive(pid) for pid in signalled) and time.monotonic() < deadline:
        time.sleep(0.05)
    return signalled


def processes_with_env(env_name: str) -> dict[int, str]:
    """Live pid → value of ``env_name`` for every process whose environment sets it (as far as /proc shows)."""
    prefix = f"{env_name}=".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(prefix):
                if pid_alive(int(entry.name)):
                    found[int(entry.name)] = item[len(prefix) :].decode(errors="replace")
                break
    return found


def processes_marked(env_name: str, value: str) -> list[int]:
    """Pids whose environment has ``env_name=value``: every process a stack started, grandchildren included."""
    return sorted(pid for pid, found in processes_with_env(env_name).items() if found == value)


def port_holder(port: int) -> str | None:
    """'pid 123 (prometheus --web...)' for the process listening on TCP ``port``, when /proc lets us tell."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == port and state in ("0A", "01") and inode != "0":
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    command = " ".join(read_cmdline(int(entry.name)) or ["?"])
                    return f"pid {entry.name} ({command[:120]})"
            except OSError:
                continue
    return None


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def write_json_atomic(path: Path, data: object) -> None:
    """Readers never see a half-written file: write beside it, then rename over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
