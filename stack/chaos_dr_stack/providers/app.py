"""The simulator's application: the providers' routes, the fault API, /health and /metrics, behind the fault gate."""
from __future__ import annotations

import hmac
import json

from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from chaos_dr_stack.providers.data import data_router
from chaos_dr_stack.providers.faults import FaultArgumentError, FaultBook, UnknownProvider, parse_fault
from chaos_dr_stack.providers.gate import FaultGate, requests_counter
from chaos_dr_stack.providers.llm import llm_router

TOKEN_HEADER = "X-Gameday-Token"
TOKEN_ENV = "GAMEDAY_FAULT_TOKEN"


def create_app(fault_token: str | None, book: FaultBook | None = None) -> FaultGate:
    """``fault_token`` enables the fault API (None: every fault request is 403). Returns the ASGI app to serve."""
    book = book or FaultBook()
    registry = CollectorRegistry(auto_describe=False)
    requests = requests_counter(registry)
    app = FastAPI(title="provider simulator", docs_url=None, redoc_url=None, openapi_url=None)
    expected = fault_token.encode() if fault_token else None

    def authorise(request: Request) -> None:
        if expected is None:
            raise HTTPException(403, "fault API disabled: no token configured")
        given = request.headers.get(TOKEN_HEADER)
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise HTTPException(403, f"missing or wrong {TOKEN_HEADER} header")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/_faults")
    async def list_faults(request: Request) -> dict:
        authorise(request)
        return {"faults": book.listing()}

    @app.put("/_faults/{provider}")
    async def put_fault(provider: str, request: Request) -> dict:
        authorise(request)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise HTTPException(400, f"body: not JSON: {raw[:100]!r}") from None
        try:
            fault = parse_fault(provider, body, book.clock())
        except UnknownProvider as exc:
            raise HTTPException(404, str(exc)) from None
        except FaultArgumentError as exc:
            raise HTTPException(400, str(exc)) from None
        return book.set(fault)

    @app.delete("/_faults/{provider}")
    async def delete_fault(provider: str, request: Request) -> dict:
        authorise(request)
        try:
            was_active = book.clear(provider)
        except UnknownProvider as exc:
            raise HTTPException(404, str(exc)) from None
        return {"provider": provider, "was_active": was_active, "healed_at": book.clock()}

    @app.delete("/_faults")
    async def delete_all(request: Request) -> dict:
        authorise(request)
        return {"healed": book.clear_all(), "healed_at": book.clock()}

    app.include_router(llm_router(book.clock))
    app.include_router(data_router(book.clock))
    return FaultGate(app, book, requests)
