"""The Kafka fault proxy: every Kafka client connects here (the broker advertises this address), and it
passes the bytes through to the broker. Partition faults will be modes of this proxy; today the only mode
is "pass"."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

MODES = ("pass",)
_CHUNK = 64 * 1024


class KafkaProxy:
    """A TCP pass-through from ``listen_port`` to ``target_port`` on loopback, tracking its connections so a
    fault mode can act on the ones already open."""

    def __init__(self, listen_host: str, listen_port: int, target_host: str, target_port: int):
        self.listen = (listen_host, listen_port)
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.admit: Callable[[tuple[str, int]], bool] | None = None
        """When set, a new connection whose peer address it rejects is closed at once. The runner sets it while
        a restarted broker has no topics yet, so that only its own admin client gets through: a producer would
        otherwise auto-create the topics with the broker's default partition count."""
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, *self.listen)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await self._serve(client_reader, client_writer)
        finally:
            self._connections.discard(task)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.admit is not None and not self.admit(client_writer.get_extra_info("peername")):
            client_writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError as exc:
            # The broker is down or restarting: the client sees its connection close and retries.
            log.debug("proxy: broker at %s:%s unreachable: %s", *self.target, exc)
            client_writer.close()
            return
        try:
            await pipe_both_ways(client_reader, client_writer, upstream_reader, upstream_writer)
        finally:
            for writer in (client_writer, upstream_writer):
                writer.close()


async def pipe_both_ways(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    """Copy a→b and b→a until either side closes; then stop both directions."""
    directions = [
        asyncio.create_task(_copy(a_reader, b_writer)),
        asyncio.create_task(_copy(b_reader, a_writer)),
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
