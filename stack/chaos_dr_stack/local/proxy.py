"""The Kafka fault proxy: every connection to a Kafka node goes through it — clients (each node advertises
its proxy port), replication between nodes (which uses the advertised address too) and the KRaft quorum (the
voters are configured at their proxy ports). It passes the bytes through ("pass"), or applies a partition fault
(``chaos_dr_stack.local.partition``: hold, drop, reset, latency, bandwidth) to the connections the fault cuts. Each
connection's source is read from the ``client.id`` of its first Kafka request, its destination is the node of
the route it came in on. A fault heals by itself when its TTL expires, whatever happens to whoever set it."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import replace

from chaos_dr_stack.local.partition import (
    MAX_FIRST_REQUEST_BYTES,
    OTHER,
    PartitionFault,
    chunk_delay,
    node_name,
    parse_request_header,
    service_of,
)

log = logging.getLogger(__name__)

MODES = ("pass", "partition")
_CHUNK = 64 * 1024


class KafkaProxy:
    """A TCP pass-through from ``listen_port`` to ``target_port`` on loopback (node 1's clients), and from each
    port added with ``add_route`` to a port of its node, tracking the connections so a fault mode can act on the
    ones already open. One fault applies to every route."""

    def __init__(self, listen_host: str, listen_port: int, target_host: str, target_port: int):
        self.listen = (listen_host, listen_port)
        self.target = (target_host, target_port)
        self.routes: list[tuple[tuple[str, int], tuple[str, int], str]] = [(self.listen, self.target, node_name(1))]
        self.mode = "pass"
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task] = set()
        self.clock: Callable[[], float] = time.time
        self.partition: PartitionFault | None = None
        self.last_heal: dict | None = None
        """The newest heal: ``{"healed_at", "reason": "deleted"|"expired", "fault": {...}}``."""
        self._changed = asyncio.Event()
        self._expiry: asyncio.TimerHandle | None = None
        self._next_fault_id = 0
        self._sockets: dict[asyncio.Task, tuple[str, str, list[asyncio.StreamWriter]]] = {}
        """Per connection task: its source, its destination node and its two writers, so a reset can reach live
        connections."""

    @property
    def running(self) -> bool:
        return bool(self._servers) and all(server.is_serving() for server in self._servers)

    @property
    def node_count(self) -> int:
        """How many Kafka nodes the routes lead to."""
        return len({node for _, _, node in self.routes})

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def open_links(self) -> list[dict]:
        """The open connections by source and destination node: what a fault could cut right now."""
        counts: dict[tuple[str, str], int] = {}
        for source, destination, _ in self._sockets.values():
            counts[source, destination] = counts.get((source, destination), 0) + 1
        return [{"source": source, "destination": destination, "connections": count}
                for (source, destination), count in sorted(counts.items())]

    def active_partition(self) -> PartitionFault | None:
        fault = self.partition
        if fault is not None and not fault.active(self.clock()):
            self._heal("expired")
            return None
        return fault

    def set_partition(self, fault: PartitionFault) -> PartitionFault:
        """Apply ``fault`` (replacing any other) and arm its expiry. Must run in the proxy's loop."""
        self._next_fault_id += 1
        fault = replace(fault, fault_id=self._next_fault_id)
        if self._expiry is not None:
            self._expiry.cancel()
        self.partition = fault
        self.mode = "partition"
        self._expiry = asyncio.get_running_loop().call_later(
            max(0.0, fault.remaining(self.clock())), self._expire, fault.fault_id
        )
        self._notify()
        if fault.mode == "reset":
            for source, destination, writers in list(self._sockets.values()):
                if fault.cuts(source, destination):
                    for writer in writers:
                        _reset(writer)
        log.info("kafka partition: %s", fault.describe(self.clock()))
        return fault

    def heal_partition(self) -> dict:
        """Remove the partition now. Returns ``{"was_active", "healed_at"}``."""
        was_active = self.active_partition() is not None
        healed_at = self._heal("deleted") if was_active else self.clock()
        return {"was_active": was_active, "healed_at": healed_at}

    def _expire(self, fault_id: int) -> None:
        if self.partition is not None and self.partition.fault_id == fault_id:
            self._heal("expired")

    def _heal(self, reason: str) -> float:
        fault, healed_at = self.partition, self.clock()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.partition = None
        self.mode = "pass"
        if fault is not None:
            self.last_heal = {"healed_at": healed_at, "reason": reason, "fault": fault.describe(healed_at)}
            log.info("kafka partition healed (%s)", reason)
        self._notify()
        return healed_at

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _held(self, source: str, destination: str) -> None:
        """Wait while a hold partition cuts ``source`` from ``destination``; returns at the heal or the expiry."""
        while True:
            fault = self.active_partition()
            if fault is None or fault.mode != "hold" or not fault.cuts(source, destination):
                return
            changed = self._changed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=max(0.001, fault.remaining(self.clock())))

    def add_route(self, listen_port: int, target_port: int, node: int) -> None:
        """Also pass ``listen_port`` through to ``target_port``, a listener of Kafka node ``node``. Before
        start()."""
        self.routes.append(((self.listen[0], listen_port), (self.target[0], target_port), node_name(node)))

    async def start(self) -> None:
        for listen, target, node in self.routes:
            accept = functools.partial(self._accept, target, node)
            self._servers.append(await asyncio.start_server(accept, *listen))

    async def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers = []

    async def _accept(self, target: tuple[str, int], node: str, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await self._serve(target, node, client_reader, client_writer)
        finally:
            self._connections.discard(task)

    async def _serve(self, target: tuple[str, int], node: str, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        try:
            first, source = await _first_request(client_reader)
        except (OSError, asyncio.IncompleteReadError):
            client_writer.close()
            return
        self._sockets[task] = (source, node, [client_writer])
        try:
            fault = self.active_partition()
            if fault is not None and fault.mode == "reset" and fault.applies_to(source, node, self.clock()):
                _reset(client_writer)  # a refused connection: the client sees a reset after its first request
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*target)
            except OSError as exc:
                # The broker is down or restarting: the client sees its connection close and retries.
                log.debug("proxy: broker at %s:%s unreachable: %s", *target, exc)
                client_writer.close()
                return
            self._sockets[task][2].append(upstream_writer)
            try:
                if await self._forward(first, upstream_writer, source, node):
                    await pipe_both_ways(client_reader, client_writer, upstream_reader, upstream_writer,
                                         copy=lambda r, w: self._copy(r, w, source, node))
            finally:
                for writer in (client_writer, upstream_writer):
                    writer.close()
        finally:
            self._sockets.pop(task, None)

    async def _forward(self, data: bytes, writer: asyncio.StreamWriter, source: str, destination: str) -> bool:
        """Forward one chunk under the fault in force; False when the connection must end (reset)."""
        await self._held(source, destination)
        fault = self.active_partition()
        now = self.clock()
        if fault is not None and fault.applies_to(source, destination, now):
            if fault.mode == "drop":
                return True
            if fault.mode == "reset":
                return False
            delay = chunk_delay(fault, source, destination, len(data), now)
            if delay > 0:
                await asyncio.sleep(delay)
        writer.write(data)
        await writer.drain()
        return True

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source: str,
                    destination: str) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await self._held(source, destination)  # hold: read nothing, so nothing is lost; buffers fill
                data = await reader.read(_CHUNK)
                if not data or not await self._forward(data, writer, source, destination):
                    return


async def _first_request(reader: asyncio.StreamReader) -> tuple[bytes, str]:
    """Read the connection's first Kafka request whole, and name the service that sent it."""
    head = await reader.readexactly(4)
    (size,) = struct.unpack(">i", head)
    if not 0 < size <= MAX_FIRST_REQUEST_BYTES:
        return head, OTHER  # not Kafka: pass it on untouched, never cut
    frame = head + await reader.readexactly(size)
    try:
        return frame, service_of(parse_request_header(frame).client_id)
    except ValueError:
        return frame, OTHER


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def pipe_both_ways(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
    copy=None,
) -> None:
    """Copy a→b and b→a until either side closes; then stop both directions."""
    copy = copy or _copy
    directions = [
        asyncio.create_task(copy(a_reader, b_writer)),
        asyncio.create_task(copy(b_reader, a_writer)),
    ]
    try:
        await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in directions:
            task.cancel()
        await asyncio.gather(*directions, return_exceptions=True)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
