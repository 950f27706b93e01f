"""The runner's control API (docs/local-stack-contract.md, "Runner control API"), served on the base port."""
from __future__ import annotations

import contextlib
import json
import signal
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

import uvicorn
from fastapi import Body, FastAPI, HTTPException, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from chaos_dr_stack.local.faults import FaultBook, FaultRequestError
from chaos_dr_stack.local.holds import holds_router
from chaos_dr_stack.local.partition_api import partition_listing, partition_router
from chaos_dr_stack.local.provider_faults import ProviderFaults, provider_faults_router
from chaos_dr_stack.local.supervisor import Instance

ALLOWED_SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT", "SIGSTOP", "SIGCONT")
"""Crash, graceful stop, interrupt, and freeze/thaw (a hung process that still holds its connections)."""

MAX_NOTIFICATIONS = 1000
"""Alertmanager notifications kept in memory; a drill produces a handful, this only bounds a runaway loop."""


class Stack(Protocol):
    """What the control API needs from the runner."""

    instances: dict[str, Instance]
    notifications: deque
    faults: FaultBook
    provider_faults: ProviderFaults

    def status(self) -> dict: ...
    def endpoints(self) -> dict[str, str]: ...
    def component_up(self) -> dict[str, bool]: ...
    def request_shutdown(self) -> None: ...


class _RunnerCollector:
    """kube-state-metrics' restart counter and an up gauge, read from the supervisor at scrape time."""

    def __init__(self, stack: Stack, namespace: str):
        self._stack = stack
        self._namespace = namespace

    def collect(self) -> Iterator:
        restarts = CounterMetricFamily(
            "kube_pod_container_status_restarts",
            "Restarts of the instance's process by the local stack runner (kubelet's restartCount).",
            labels=["namespace", "pod", "container"],
        )
        for instance in self._stack.instances.values():
            restarts.add_metric([self._namespace, instance.name, instance.spec.component], instance.restarts)
        yield restarts
        up = GaugeMetricFamily(
            "stack_component_up",
            "1 when the component is ready: every replica for a supervised component, listening for in-process ones.",
            labels=["component"],
        )
        for component, is_up in self._stack.component_up().items():
            up.add_metric([component], 1.0 if is_up else 0.0)
        yield up


def create_app(stack: Stack, namespace: str = "app") -> FastAPI:
    app = FastAPI(title="local stack runner", docs_url=None, redoc_url=None, openapi_url=None)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RunnerCollector(stack, namespace))

    @app.get("/status")
    async def status() -> dict:
        return stack.status()

    @app.get("/endpoints")
    async def endpoints() -> dict:
        return stack.endpoints()

    @app.get("/instances")
    async def instances(component: str | None = Query(None)) -> dict:
        return {
            "instances": [
                i.snapshot() for i in stack.instances.values() if component is None or i.spec.component == component
            ]
        }

    @app.post("/instances/{name}/kill")
    async def kill(name: str, request: Request) -> dict:
        instance = stack.instances.get(name)
        if instance is None:
            raise HTTPException(404, f"unknown instance {name!r}; instances are: {', '.join(stack.instances)}")
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise HTTPException(400, f'body must be a JSON object like {{"signal": "SIGKILL"}}, got {raw[:100]!r}')
        signal_name = body.get("signal", "SIGKILL")
        if signal_name not in ALLOWED_SIGNALS:
            raise HTTPException(
                400, f"signal {signal_name!r} is not allowed; use one of: {', '.join(ALLOWED_SIGNALS)}"
            )
        killed_at = time.time()
        pid = instance.send(signal.Signals[signal_name])
        if pid is None:
            raise HTTPException(409, f"instance {name!r} has no running process (state {instance.state!r})")
        return {"name": name, "pid": pid, "signal": signal_name, "killed_at": killed_at}

    @app.get("/faults")
    async def faults() -> dict:
        listing = stack.faults.listing()
        return {**listing, "faults": [
            *listing["faults"], *partition_listing(stack.proxy), *stack.provider_faults.listing(),
            *stack.holds.listing(),
        ]}

    @app.put("/faults/http-errors")
    async def inject_http_errors(request: Request) -> dict:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise HTTPException(400, f"body: not JSON: {raw[:100]!r}") from None
        try:
            return await stack.faults.inject_http_errors(body)
        except FaultRequestError as exc:
            raise HTTPException(400, str(exc)) from None

    @app.delete("/faults/http-errors")
    async def heal_http_errors() -> dict:
        return await stack.faults.heal_http_errors()

    @app.post("/alerts/webhook")
    async def alerts_webhook(payload: dict[str, Any] = Body(...)) -> dict:
        stack.notifications.append(
            {
                "received_at": time.time(),
                "status": payload.get("status"),
                "alerts": [
                    {key: alert.get(key) for key in ("status", "labels", "startsAt", "endsAt")}
                    for alert in payload.get("alerts", [])
                ],
            }
        )
        return {"ok": True}

    @app.get("/alerts")
    async def alerts() -> dict:
        return {"notifications": list(stack.notifications)}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/shutdown")
    async def shutdown() -> dict:
        stack.request_shutdown()
        return {"stopping": True}

    app.include_router(partition_router(lambda: stack.proxy))
    app.include_router(provider_faults_router(lambda: stack.provider_faults))
    app.include_router(holds_router(lambda: stack.holds))
    return app


def new_notifications() -> deque:
    return deque(maxlen=MAX_NOTIFICATIONS)


class ControlServer(uvicorn.Server):
    """uvicorn inside the runner's loop. The runner owns SIGTERM and SIGINT, so uvicorn must not take them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(app: FastAPI, host: str, port: int, log_level: str) -> ControlServer:
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning" if log_level == "info" else log_level,
        access_log=False, lifespan="off",
    )
    return ControlServer(config)
