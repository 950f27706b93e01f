"""A stopped producers process is gone by its deadline even when something in it blocks for good."""
from __future__ import annotations

import subprocess
import sys
import time

BLOCKED_FOREVER = """
import threading
from chaos_dr_stack.producers.cli import exit_by_deadline
exit_by_deadline(0.5)
threading.Event().wait()
"""


def test_a_process_blocked_for_good_exits_1_at_its_deadline_and_says_why():
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", BLOCKED_FOREVER], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "after the stop signal: exiting now" in result.stderr, result.stderr
    assert took < 20, took
