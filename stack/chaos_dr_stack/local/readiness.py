"""Readiness checks, the runner's equivalent of a pod's readinessProbe. Each answers True or False, never raises."""
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
    """How to tell that an instance is ready. ``kind`` is 'tcp' (port accepts), 'mongo' (port accepts and a
    ``ping`` command answers ok) or 'http' (GET ``path`` answers 200, or an injected error)."""

    kind: Literal["tcp", "mongo", "http"]
    port: int
    path: str = "/"

    def describe(self) -> str:
        if self.kind == "http":
            return f"GET http://{LOOPBACK}:{self.port}{self.path} == 200"
        if self.kind == "mongo":
            return f"mongo ping on {LOOPBACK}:{self.port}"
        return f"TCP connect to {LOOPBACK}:{self.port}"


async def check(ready: ReadyCheck, http: httpx.AsyncClient) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            if ready.kind == "tcp":
                return await tcp_accepts(ready.port)
            if ready.kind == "mongo":
                return await mongo_pings(ready.port)
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


async def mongo_pings(port: int) -> bool:
    """One OP_MSG ``ping`` over a raw socket: no driver, no thread, no connection pool to leak."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        body = struct.pack("<I", 0) + b"\x00" + bson.encode({"ping": 1, "$db": "admin"})
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
