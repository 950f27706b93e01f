"""Evidence for a stall nobody can reproduce on a quiet machine: while a gate runs, sample the stack's database
process and the machine from /proc twice a second (run state, CPU seconds, bytes read and written, and the kernel's
pressure-stall totals), so a test that sees CUJ-1 fail can show what the database was doing meanwhile."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _pressure(resource: str) -> float | None:
    """Microseconds some task waited on ``resource`` since boot, or None without PSI."""
    try:
        first = Path(f"/proc/pressure/{resource}").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(first.rsplit("total=", 1)[1])


def _process(pid: int) -> dict | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    except (OSError, ValueError):
        return None
    return {"state": fields[0], "cpu_s": (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
            "read_bytes": int(io["read_bytes"]), "write_bytes": int(io["write_bytes"])}


class ProcSampler:
    """``with ProcSampler(control_url, path):`` samples the ``mongo`` instance every ``interval`` seconds into
    ``path`` (JSON lines) until the block ends; ``around(start, end)`` summarises a window."""

    def __init__(self, control_url: str, path: Path, component: str = "mongo", interval: float = 0.5):
        self.control_url, self.path, self.component, self.interval = control_url, path, component, interval
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.path.write_text("".join(json.dumps(s) + "\n" for s in self.samples))

    def _pid(self) -> int | None:
        try:
            instances = httpx.get(self.control_url + "/instances", params={"component": self.component},
                                  timeout=2).json()["instances"]
        except (httpx.HTTPError, ValueError, KeyError):
            return None
        return instances[0]["pid"] if instances else None

    def _run(self) -> None:
        pid, looked_up = None, 0.0
        while not self._stop.wait(self.interval):
            now = time.time()
            if pid is None or now - looked_up > 5:
                pid, looked_up = self._pid() or pid, now
            sample = {"at": round(now, 3), "pid": pid, "load1": float(Path("/proc/loadavg").read_text().split()[0]),
                      "io_stall_us": _pressure("io"), "cpu_stall_us": _pressure("cpu")}
            if pid is not None:
                sample.update(_process(pid) or {"state": "gone"})
            self.samples.append(sample)

    def around(self, start: float, end: float, margin: float = 2.0) -> list[str]:
        """One line per sample in [start - margin, end + margin]: seconds from ``start``, the process state, its CPU
        and disk write rates, and the machine's I/O and CPU stall per second (ms/s)."""
        rows, previous = [], None
        for sample in self.samples:
            if previous is not None and start - margin <= sample["at"] <= end + margin:
                dt = sample["at"] - previous["at"]

                def rate(key: str, scale: float) -> str:
                    if sample.get(key) is None or previous.get(key) is None:
                        return "-"
                    return f"{(sample[key] - previous[key]) / dt / scale:.0f}"
                rows.append(f"{sample['at'] - start:+6.1f}s {sample.get('state', '?')} "
                            f"cpu {rate('cpu_s', 0.01)}% write {rate('write_bytes', 1e6)}MB/s "
                            f"io-stall {rate('io_stall_us', 1e3)}ms/s cpu-stall {rate('cpu_stall_us', 1e3)}ms/s "
                            f"load {sample['load1']}")
            previous = sample
        return rows
