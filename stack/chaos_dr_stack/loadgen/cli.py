"""``python -m chaos_dr_stack.loadgen --port P --target http://127.0.0.1:B+6 [--rate 20] [--paths /gpu/info,/health]``

CUJ-1's users for the local stack: steady API traffic, so the availability and latency SLIs have real requests
to measure. HTTP API: ``GET /health``, ``GET /metrics`` (``loadgen_requests_total{path,status}`` and friends),
``GET /rate``, ``POST /rate {"rate": 20}`` (0 pauses; 0–1000, else 400), ``GET /outcomes?since=T&until=T`` (each
request started in that wall-clock window: ``[started_at, path, status, seconds]``; bad bounds 400). SIGTERM stops
it (exit 0).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from fastapi import Body, FastAPI, HTTPException, Query
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from chaos_dr_stack.loadgen.generator import DEFAULT_PATHS, LoadGenerator, validate_rate
from chaos_dr_stack.processor.runtime import serve

log = logging.getLogger("chaos_dr_stack.loadgen")


def create_app(generator: LoadGenerator) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        task = asyncio.create_task(generator.run(), name="loadgen")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app = FastAPI(title="loadgen", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", **generator.snapshot()}

    @app.get("/rate")
    async def get_rate() -> dict:
        return {"rate": generator.rate}

    @app.post("/rate")
    async def set_rate(body: dict = Body(...)) -> dict:
        try:
            return {"rate": generator.set_rate(body.get("rate"))}
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    @app.get("/outcomes")
    async def outcomes(since: float = Query(...), until: float = Query(...)) -> dict:
        try:
            return generator.outcomes_between(since, until)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m chaos_dr_stack.loadgen", description="CA3 API load generator (CUJ-1 users)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--target", required=True, help="base URL of the processor API service")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second (default 20)")
    p.add_argument("--paths", default=",".join(DEFAULT_PATHS), help="comma-separated paths, taken in turn")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    try:
        validate_rate(args.rate)
    except ValueError as exc:
        p.error(str(exc))
    args.paths = [path for path in args.paths.split(",") if path]
    if not args.paths or not all(path.startswith("/") for path in args.paths):
        p.error(f"--paths must be paths starting with '/', got {args.paths!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s loadgen %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    generator = LoadGenerator(args.target, args.rate, args.paths)
    log.info("sending %.1f requests/s to %s over %s", args.rate, args.target, ", ".join(args.paths))
    serve(create_app(generator), args.host, args.port, on_signal=lambda _sig: None)
    return 0
