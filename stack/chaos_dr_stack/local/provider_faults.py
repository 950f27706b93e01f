"""Provider faults through the runner (docs/local-stack-contract.md, "Runner control API"): the control API passes
them to the provider simulator's fault API with the per-stack token, so the framework never holds the token.

The simulator validates (one set of rules, in chaos_dr_stack.providers.faults) and enforces each fault's TTL itself. The
runner remembers what is active so that ``GET /faults`` lists it, and so that a simulator that restarts mid-drill
gets its faults back, with the time left, before it counts as ready: a crash must not quietly heal an outage the
experiment is measuring.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

KIND = "provider"
TOKEN_HEADER = "X-Gameday-Token"
"""Mirrors chaos_dr_stack.providers.app (the runner does not import a service's code)."""
CALL_TIMEOUT_S = 5.0
"""The simulator answers its fault API in milliseconds; on a 2-core box shared by several test runs it has been seen
to take over a second, and a fault the caller believes failed but which was applied is worse than a slow answer."""


class ProviderFaults:
    """``http()`` is the runner's client; ``url`` the simulator's base URL."""

    def __init__(self, token: str, http: Callable[[], httpx.AsyncClient], url: str,
                 clock: Callable[[], float] = time.time):
        self._token = token
        self._http = http
        self._url = url
        self._clock = clock
        self._active: dict[str, tuple[dict, dict]] = {}
        """provider → (the request body, the fault as the simulator applied it)."""
        self._lock = asyncio.Lock()

    def listing(self) -> list[dict]:
        now = self._clock()
        self._active = {p: v for p, v in self._active.items() if v[1]["expires_at"] > now}
        return [
            {"kind": KIND, **applied, "expires_in": round(applied["expires_at"] - now, 3)}
            for _, applied in self._active.values()
        ]

    async def put(self, provider: str, body: object) -> tuple[int, dict]:
        async with self._lock:
            status, answer = await self._call("PUT", f"/_faults/{provider}", body)
            if status == 200:
                self._active[provider] = (body, answer)
                log.info("provider fault %s: %s", provider, json.dumps(body))
                return status, {"kind": KIND, **answer}
            return status, answer

    async def delete(self, provider: str) -> tuple[int, dict]:
        async with self._lock:
            status, answer = await self._call("DELETE", f"/_faults/{provider}")
            if status == 200:
                self._active.pop(provider, None)
                log.info("provider fault %s healed (was active: %s)", provider, answer.get("was_active"))
                return status, {"kind": KIND, **answer}
            return status, answer

    async def delete_all(self) -> tuple[int, dict]:
        async with self._lock:
            status, answer = await self._call("DELETE", "/_faults")
            if status == 200:
                self._active.clear()
                log.info("provider faults healed: %s", ", ".join(answer.get("healed", [])) or "none was active")
                return status, {"kind": KIND, **answer}
            return status, answer

    async def reapply(self) -> None:
        """For a simulator that just (re)started: every remembered fault with its time left. Raises when the
        simulator refuses one, so the supervisor keeps it out of service until it has them."""
        now = self._clock()
        for provider, (body, applied) in list(self._active.items()):
            left = applied["expires_at"] - now
            if left <= 0:
                self._active.pop(provider, None)
                continue
            status, answer = await self._call("PUT", f"/_faults/{provider}", {**body, "ttl_seconds": round(left, 3)})
            if status != 200:
                raise RuntimeError(f"could not re-apply the {provider} fault: {status} {answer}")
            self._active[provider] = (body, {**answer, "applied_at": applied["applied_at"],
                                             "ttl_seconds": applied["ttl_seconds"]})
            log.info("provider fault %s re-applied to the restarted simulator (%.1f s left)", provider, left)

    async def _call(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        try:
            response = await self._http().request(
                method, self._url + path, headers={TOKEN_HEADER: self._token},
                content=None if body is None else json.dumps(body), timeout=CALL_TIMEOUT_S,
            )
        except httpx.HTTPError as exc:
            return 503, {"detail": f"provider simulator at {self._url} did not answer: {type(exc).__name__} {exc}"}
        try:
            answer = response.json()
        except ValueError:
            answer = {"detail": response.text[:300]}
        return response.status_code, answer


def provider_faults_router(faults_of: Callable[[], ProviderFaults]) -> APIRouter:
    router = APIRouter()

    @router.put("/faults/providers/{provider}")
    async def put_provider_fault(provider: str, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise HTTPException(400, f"body: not JSON: {raw[:100]!r}") from None
        status, answer = await faults_of().put(provider, body)
        return JSONResponse(answer, status_code=status)

    @router.delete("/faults/providers/{provider}")
    async def delete_provider_fault(provider: str) -> JSONResponse:
        status, answer = await faults_of().delete(provider)
        return JSONResponse(answer, status_code=status)

    @router.delete("/faults/providers")
    async def delete_provider_faults() -> JSONResponse:
        status, answer = await faults_of().delete_all()
        return JSONResponse(answer, status_code=status)

    return router
