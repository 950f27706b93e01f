"""The processor API service: a round-robin TCP balancer over the replicas that are ready now, which is
what a Kubernetes Service with its endpoints does.

With no ready replica the port stops listening, so clients get "connection refused", as they do from a
Service with no endpoints. Connections already open stay open, like conntrack entries. The port stays bound
throughout (a listening socket is turned back into a merely bound one with shutdown(SHUT_RD), on Linux):
a free port in the ephemeral range could otherwise be taken by any client socket on the machine.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Callable

from chaos_dr_stack.local.proxy import pipe_both_ways

Backend = tuple[str, int]

ENDPOINT_REFRESH = 0.5
"""Seconds between endpoint refreshes: as often as the supervisor probes a ready replica."""
BACKLOG = 128


class RoundRobinBalancer:
    def __init__(
        self,
        host: str,
        port: int,
        ready_backends: Callable[[], list[Backend]],
        poll_interval: float = ENDPOINT_REFRESH,
    ):
        self.listen = (host, port)
        self.ready_backends = ready_backends
        self.poll_interval = poll_interval
        self.endpoints: list[Backend] = []
        self._turn = itertools.count()
        self._sock: socket.socket | None = None
        self._acceptor: asyncio.Task | None = None
        self._poller: asyncio.Task | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def listening(self) -> bool:
        return self._acceptor is not None

    def bind(self) -> None:
        """Hold the port, not listening yet: connections are refused until a replica is ready."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        sock.bind(self.listen)
        self._sock = sock

    async def start(self) -> None:
        if self._sock is None:
            self.bind()
        await self.refresh()
        self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        tasks = [t for t in (self._poller, self._acceptor) if t is not None] + list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._poller = self._acceptor = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def refresh(self) -> None:
        self.endpoints = list(self.ready_backends())
        if self.endpoints and self._acceptor is None:
            self._sock.listen(BACKLOG)
            self._acceptor = asyncio.create_task(self._accept_loop())
        elif not self.endpoints and self._acceptor is not None:
            self._acceptor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acceptor
            self._acceptor = None
            self._sock.shutdown(socket.SHUT_RD)  # stop listening, keep the port; queued connections are reset

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            await self.refresh()

    def pick_order(self) -> list[Backend]:
        """Every current endpoint, starting at the next one in round-robin order."""
        endpoints = self.endpoints
        if not endpoints:
            return []
        start = next(self._turn) % len(endpoints)
        return endpoints[start:] + endpoints[:start]

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self._sock)
            task = asyncio.create_task(self._serve(conn))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _serve(self, conn: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=conn)
        try:
            for host, port in self.pick_order():
                try:
                    upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
                except OSError:
                    continue  # died since the last refresh: try the next endpoint
                try:
                    await pipe_both_ways(reader, writer, upstream_reader, upstream_writer)
                finally:
                    upstream_writer.close()
                return
        finally:
            writer.close()
