"""The guardian between ``gameday`` and ``chaos run``: ``python -m chaoslib_ext.gameday.guard CHAOS ARGS...``.

If ``gameday`` is SIGKILLed, nobody is left to tell ``chaos run`` to stop, and it would go on unattended. The kernel
can signal a child when its parent dies (PR_SET_PDEATHSIG), but it signals again for every parent thread that
ends and every subreaper the child is handed to, and a second SIGTERM during rollbacks makes chaoslib skip the
rest of them. So this small single-purpose process takes the death signal, and passes exactly one SIGTERM on to
``chaos run``, which then interrupts the method and plays its rollbacks. Its exit code is ``chaos run``'s.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return  # not Linux: the faults' TTLs remain the safety net
    if os.getppid() != parent:  # the parent died before the prctl
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m chaoslib_ext.gameday.guard COMMAND [ARG...]", file=sys.stderr)
        return 2
    parent = int(os.environ.get("GAMEDAY_GUARD_PARENT", os.getppid()))
    forwarded = False
    child: subprocess.Popen | None = None

    def forward_once(signum: int, frame: object) -> None:
        nonlocal forwarded
        if child is not None and not forwarded and child.poll() is None:
            forwarded = True
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward_once)
    signal.signal(signal.SIGINT, forward_once)
    child = subprocess.Popen(argv)
    _die_with_parent(parent)
    returncode = child.wait()
    return 128 - returncode if returncode < 0 else returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
