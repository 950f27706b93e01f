"""The processor's HTTP API: /health, /gpu/info and /metrics, plus the drills' fault hook (chaos_dr_stack.processor.faults)."""
from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from pymongo.database import Database
from pymongo.errors import PyMongoError
from starlette_exporter import PrometheusMiddleware, handle_metrics

from chaos_dr_stack.events import valid_id
from chaos_dr_stack.processor import metrics as _app_metrics  # also makes /metrics carry the app's own series
from chaos_dr_stack.processor import store
from chaos_dr_stack.processor.faults import FAULT_PATH, LIVENESS_PATH, DeterministicInjector, FaultMiddleware


REQUEST_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""starlette_exporter's defaults have no 0.2 s bound, so SLO-2's p95 ≤ 200 ms could only be interpolated. With an
exact bucket, the share of requests within 200 ms is a plain ratio of two series."""


def health_status(kafka: bool, mongo: bool) -> str:
    """``ok`` (both reachable), ``degraded`` (Mongo only: the API serves, ingestion is stalled) or ``down`` (no
    Mongo: the API cannot serve, /health is 503 and the replica is not ready)."""
    if not mongo:
        return "down"
    return "ok" if kafka else "degraded"


def create_app(
    db: Database,
    kafka_ok: Callable[[], bool],
    mongo_ok: Callable[[], bool],
    fault_token: str | None = None,
    injector: DeterministicInjector | None = None,
) -> FastAPI:
    """``kafka_ok`` and ``mongo_ok`` are cached checks (``kafka_ok`` should not wait: it only informs); ``db`` is a handle with short timeouts. ``fault_token``
    enables the fault hook (None: disabled, every hook request is 403)."""
    app = FastAPI(title="processor", docs_url=None, redoc_url=None, openapi_url=None)
    # Added first, so it runs inside starlette_exporter: injected errors are counted like real ones.
    app.add_middleware(
        FaultMiddleware, injector=injector or DeterministicInjector(), token=fault_token, router=app.router
    )
    app.add_middleware(
        PrometheusMiddleware, app_name="processor", group_paths=True, buckets=REQUEST_LATENCY_BUCKETS,
        # The hook is the stack's control plane and /livez the kubelet's: neither is user traffic, never in the SLI.
        skip_paths=[FAULT_PATH, LIVENESS_PATH],
    )
    app.add_route("/metrics", handle_metrics)

    # Plain `def` endpoints: pymongo and librdkafka block, so they run in the thread pool, not the event loop.
    @app.get("/health")
    def health() -> JSONResponse:
        """Readiness is "this replica can serve the API", which needs only Mongo (CUJ-1: Processor API -> Mongo).
        Kafka is reported, never a reason to leave the service: with Kafka unreachable and Mongo up the answer is
        200 ``"status": "degraded", "kafka": false`` (docs/slos.md, "/health and SLO-1"). Mongo down is 503."""
        kafka, mongo = kafka_ok(), mongo_ok()
        _app_metrics.DEPENDENCY_UP.labels("kafka").set(int(kafka))
        _app_metrics.DEPENDENCY_UP.labels("mongo").set(int(mongo))
        status = health_status(kafka=kafka, mongo=mongo)
        body = {"status": status, "kafka": kafka, "mongo": mongo}
        return JSONResponse(body, status_code=503 if status == "down" else 200)

    @app.get(LIVENESS_PATH)
    async def livez() -> dict:
        """Liveness: the process answers. Never its dependencies: a kubelet restarts a pod that fails this, and a
        restart cures neither a database nor a broker that is away; it would only count against SLO-4. It runs on
        the event loop, not in the thread pool, which requests blocked on a frozen database can fill."""
        return {"status": "alive"}

    @app.get("/gpu/info")
    def gpu_info(gpu_id: str | None = Query(default=None)) -> dict:
        if gpu_id is not None and not valid_id(gpu_id):
            raise HTTPException(
                status_code=400, detail=f"invalid gpu_id {gpu_id[:80]!r}: must be 1-64 characters of [A-Za-z0-9_.:-]"
            )
        try:
            if gpu_id is None:
                return {"gpus": store.all_gpus(db)}
            gpu = store.one_gpu(db, gpu_id)
        except PyMongoError as exc:
            raise HTTPException(status_code=503, detail=f"mongo unavailable: {type(exc).__name__}") from None
        if gpu is None:
            raise HTTPException(status_code=404, detail=f"gpu_id {gpu_id!r} not found")
        return gpu

    return app
