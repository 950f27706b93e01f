"""Readiness and liveness checks, the runner's equivalents of a pod's readinessProbe and livenessProbe. Each check
answers True or False, never raises."""
from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Literal

import bson
import httpx

from chaos_dr_stack.local.layout import LOOPBACK

INJECTED_HEADER = "X-Gameday-Injected"
"""An error carrying ``X-Gameday-Injected: 1`` is a drill's synthetic fault (chaos_dr_stack.processor.faults): the process
answered, so it is alive and ready. Counting it as down would drop the replica from the service and change the
error ratio the drill injected."""

CHECK_TIMEOUT = 1.0
"""Seconds one check may take. A component slower than this on loopback is not ready to serve anyone."""


@dataclass(frozen=True)
class ReadyCheck:
    """How to tell that an instance is ready (or alive). ``kind`` is 'tcp' (port accepts), 'mongo' (port accepts
    and a ``ping`` command answers ok), 'mongo-storage' (``listDatabases`` answers ok: unlike ``ping``, it needs the
    storage engine's lock, so a server whose storage is stuck fails it) or 'http' (GET ``path`` answers 200, or an
    injected error)."""

    kind: Literal["tcp", "mongo", "mongo-storage", "http"]
    port: int
    path: str = "/"

    def describe(self) -> str:
        if self.kind == "http":
            return f"GET http://{LOOPBACK}:{self.port}{self.path} == 200"
        if self.kind == "mongo":
            return f"mongo ping on {LOOPBACK}:{self.port}"
        if self.kind == "mongo-storage":
            return f"mongo listDatabases on {LOOPBACK}:{self.port}"
        return f"TCP connect to {LOOPBACK}:{self.port}"


@dataclass(frozen=True)
class LivenessProbe:
    """When to kill an instance that still runs but no longer works, as the kubelet does with a livenessProbe: after
    ``failure_threshold`` failed checks in a row, one every ``period`` seconds, each allowed ``timeout`` seconds. The
    supervisor then restarts it, with its back-off, and counts the restart. Checks begin once the process has been
    ready (a startupProbe's role), so a slow start is judged by the readiness timeout alone."""

    check: ReadyCheck
    period: float
    timeout: float
    failure_threshold: int

    def __post_init__(self) -> None:
        if self.period <= 0 or self.timeout <= 0:
            raise ValueError(f"period and timeout must be > 0 seconds, got {self.period} and {self.timeout}")
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {self.failure_threshold}")

    def describe(self) -> str:
        return (f"{self.check.describe()} within {self.timeout:g} s, failing {self.failure_threshold} times in a row "
                f"{self.period:g} s apart")


async def check(ready: ReadyCheck, http: httpx.AsyncClient, timeout: float = CHECK_TIMEOUT) -> bool:
    try:
        async with asyncio.timeout(timeout):
            if ready.kind == "tcp":
                return await tcp_accepts(ready.port)
            if ready.kind == "mongo":
                return await mongo_command(ready.port, {"ping": 1})
            if ready.kind == "mongo-storage":
                return await mongo_command(ready.port, {"listDatabases": 1, "nameOnly": True})
            response = await http.get(f"http://{LOOPBACK}:{ready.port}{ready.path}")
            return response.status_code == 200 or response.headers.get(INJECTED_HEADER) == "1"
    except (OSError, TimeoutError, httpx.HTTPError, ValueError, bson.errors.BSONError):
        return False


async def tcp_accepts(port: int) -> bool:
    _, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.close()
    await writer.wait_closed()
    return True


_OP_MSG = 2013


async def mongo_command(port: int, command: dict) -> bool:
    """One OP_MSG admin ``command`` over a raw socket, True if it answers ok: no driver, no thread, no connection
    pool to leak."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        body = struct.pack("<I", 0) + b"\x00" + bson.encode({**command, "$db": "admin"})
        writer.write(struct.pack("<iiii", 16 + len(body), 1, 0, _OP_MSG) + body)
        await writer.drain()
        length, _, _, opcode = struct.unpack("<iiii", await reader.readexactly(16))
        payload = await reader.readexactly(length - 16)
        if opcode != _OP_MSG or payload[4:5] != b"\x00":
            return False
        (doc_length,) = struct.unpack("<i", payload[5:9])
        return bson.decode(payload[5 : 5 + doc_length]).get("ok") == 1
    finally:
        writer.close()
