"""What a long run shows while it goes: experiment, step, elapsed time and the current SLI values.

On a terminal, a status line at the bottom is redrawn every second; the step lines scroll above it. When the
output is not a terminal (CI logs), every line is plain, appended once, with no control characters, and a
heartbeat line every ``heartbeat_seconds`` shows the SLIs during long steps. ``--quiet`` turns all of it off.
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from chaoslib_ext.gameday.sli_sampler import describe

CLEAR_LINE = "\r\x1b[K"


class Progress:
    def __init__(self, stream: TextIO | None = None, tty: bool | None = None,
                 sli: Callable[[], dict[str, Any] | None] | None = None, heartbeat_seconds: float = 15.0):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.sli = sli or (lambda: None)
        self.heartbeat_seconds = heartbeat_seconds
        self.started = time.monotonic()
        self.experiment = ""
        self.step = ""
        self._last_line = self.started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def elapsed(self) -> str:
        return f"[{time.monotonic() - self.started:7.1f}s]"

    def __call__(self, message: str) -> None:
        """A step line. Lines starting with ``[i/n]`` name the experiment now running."""
        text = message.strip()
        if text.startswith("[") and "/" in text.split("]", 1)[0]:
            self.experiment, self.step = text, ""
        else:
            self.step = text
        sample = self.sli()
        # No suffix until the first sample: a target without Prometheus should not print "n/a" on every line.
        self._emit(f"{self.elapsed()} {message}" + (f"  ({describe(sample)})" if sample else ""))

    def _emit(self, line: str) -> None:
        with self._lock:
            if self.tty:
                self.stream.write(CLEAR_LINE + line + "\n" + self._status())
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
            self._last_line = time.monotonic()

    def _status(self) -> str:
        step = f" | {self.step}" if self.step else ""
        return f"{self.elapsed()} {self.experiment}{step} | {describe(self.sli())}"[:200]

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            if self.tty:
                with self._lock:
                    self.stream.write(CLEAR_LINE + self._status())
                    self.stream.flush()
            elif time.monotonic() - self._last_line >= self.heartbeat_seconds:
                self._emit(f"{self.elapsed()} {self.experiment} still running: {describe(self.sli())}")

    def start(self) -> Progress:
        self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        if self.tty:
            with self._lock:
                self.stream.write(CLEAR_LINE)
                self.stream.flush()
