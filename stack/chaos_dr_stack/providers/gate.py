"""The fault gate: an ASGI wrapper around the simulator that applies each provider's fault to its requests and
counts every provider request by outcome.

It must wrap the whole application (uvicorn calls it directly): the ``reset`` mode needs uvicorn's own ``receive``
to reach the connection's transport, and nothing inside may have buffered the request.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct

from prometheus_client import CollectorRegistry, Counter

from chaos_dr_stack.providers.catalogue import LLM_PROVIDERS, provider_of
from chaos_dr_stack.providers.faults import FaultBook, ProviderFault

log = logging.getLogger(__name__)

OUTCOMES = ("ok", "error", "timeout", "reset", "malformed", "latency")
HOLD_POLL_SECONDS = 0.25
"""How often a held (``timeout``) request checks whether its fault ended."""


def requests_counter(registry: CollectorRegistry) -> Counter:
    return Counter("provider_sim_requests", "Provider requests by provider and outcome", ["provider", "outcome"],
                   registry=registry)


def error_body(provider: str, status: int) -> dict:
    """The provider's own error shape for ``status``."""
    limited = status == 429
    message = "Rate limit reached; retry after the Retry-After interval" if limited else (
        "The server had an error while processing your request" if status == 500 else "The service is unavailable")
    if provider in LLM_PROVIDERS:
        kind = "rate_limit_exceeded" if limited else "server_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return {
        "alpaca": {"code": 42910000 if limited else 50010000, "message": message},
        "finnhub": {"error": message},
        "polygon": {"status": "ERROR", "request_id": "sim", "error": message},
        "coingecko": {"status": {"error_code": status, "error_message": message}},
        "newsapi": {"status": "error", "code": "rateLimited" if limited else "unexpectedError", "message": message},
        "gdelt": {"error": message},
    }[provider]


class FaultGate:
    def __init__(self, app, book: FaultBook, requests: Counter):
        self.app = app
        self.book = book
        self.requests = requests

    async def __call__(self, scope, receive, send) -> None:
        provider = provider_of(scope.get("path", "")) if scope["type"] == "http" else None
        if provider is None:
            await self.app(scope, receive, send)
            return
        fault = self.book.decide(provider)
        outcome = "ok" if fault is None else "error" if fault.mode == "error" else fault.mode
        self.requests.labels(provider, outcome).inc()
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.mode == "error":
            await self._error(send, provider, fault)
        elif fault.mode == "latency":
            await asyncio.sleep(fault.latency_ms / 1000)
            await self.app(scope, receive, send)
        elif fault.mode == "timeout":
            await self._hold(receive, fault)
        elif fault.mode == "reset":
            await _reset(receive)
        elif fault.mode == "malformed":
            await self._malformed(scope, receive, send)

    @staticmethod
    async def _error(send, provider: str, fault: ProviderFault) -> None:
        body = json.dumps(error_body(provider, fault.status)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if fault.status == 429:
            headers.append((b"retry-after", str(fault.retry_after_s).encode()))
        await send({"type": "http.response.start", "status": fault.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _hold(self, receive, fault: ProviderFault) -> None:
        """Accept and never answer, like a blackholed upstream: wait until the client hangs up or the fault ends
        (healed, replaced, expired), then drop the connection without a response. Only this task waits."""
        while self.book.is_current(fault):
            try:
                message = await asyncio.wait_for(receive(), HOLD_POLL_SECONDS)
            except TimeoutError:
                continue
            if message["type"] == "http.disconnect":
                return
        await _reset(receive)

    async def _malformed(self, scope, receive, send) -> None:
        """200 with the first half of the real answer: what a proxy that cut the body short delivers."""
        chunks: list[bytes] = []

        async def capture(message) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        real = b"".join(chunks)
        body = real[: max(1, len(real) // 2)]
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _reset(receive) -> None:
    """Close the connection with a TCP RST and no response. uvicorn's ``receive`` is a method of the request's
    cycle, which holds the transport; SO_LINGER 0 turns the close into a reset."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("reset fault: no transport reachable from receive(); the gate must wrap the app in uvicorn")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:  # already closed by the peer
            log.debug("SO_LINGER failed", exc_info=True)
    transport.abort()
    # connection_lost runs on the next loop turn and marks the cycle disconnected; until then uvicorn would answer
    # "returned without a response" with a 500 into the dead socket (and log an error).
    await asyncio.sleep(0)
    cycle.disconnected = True
