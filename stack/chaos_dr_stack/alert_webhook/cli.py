"""``python -m chaos_dr_stack.alert_webhook --host 0.0.0.0 --port 8080``: Alertmanager's webhook receiver on Kubernetes.

Locally the runner's control API receives Alertmanager's notifications; in a cluster this service does, with the
same two routes (docs/local-stack-contract.md): ``POST /alerts/webhook`` records a notification and
``GET /alerts`` lists them, ``{"notifications": [{"received_at", "status", "alerts": [{"status", "labels",
"startsAt", "endsAt"}]}]}``. Also ``GET /health`` and ``GET /metrics``. A body that is not a JSON object is a 400
and is not recorded. SIGTERM stops it (exit 0); notifications live in memory only, as the runner's do.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import deque

from fastapi import FastAPI, HTTPException, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.responses import Response

from chaos_dr_stack.processor.runtime import serve

MAX_NOTIFICATIONS = 1000
"""Kept in memory, newest last: a drill produces a handful; this only bounds a runaway route."""

log = logging.getLogger("chaos_dr_stack.alert_webhook")


def create_app(max_notifications: int = MAX_NOTIFICATIONS) -> FastAPI:
    notifications: deque = deque(maxlen=max_notifications)
    registry = CollectorRegistry()
    received = Counter("alert_webhook_notifications", "Alertmanager notifications received, by status",
                       ["status"], registry=registry)
    app = FastAPI(title="alert-webhook", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/alerts/webhook")
    async def webhook(request: Request) -> dict:
        raw = await request.body()
        try:
            payload = json.loads(raw)
        except ValueError:
            raise HTTPException(400, f"body: not JSON: {raw[:100]!r}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("alerts", []), list):
            raise HTTPException(400, "body: expected Alertmanager's webhook object with an `alerts` list")
        status = str(payload.get("status"))
        notifications.append({
            "received_at": time.time(),
            "status": payload.get("status"),
            "alerts": [
                {key: alert.get(key) for key in ("status", "labels", "startsAt", "endsAt")}
                for alert in payload.get("alerts", []) if isinstance(alert, dict)
            ],
        })
        received.labels(status=status).inc()
        return {"ok": True}

    @app.get("/alerts")
    async def alerts() -> dict:
        return {"notifications": list(notifications)}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "notifications": len(notifications)}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos_dr_stack.alert_webhook",
                                description="Alertmanager webhook receiver: POST /alerts/webhook, GET /alerts")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s alert-webhook %(levelname)s %(name)s: %(message)s")
    log.info("receiving Alertmanager notifications on %s:%d/alerts/webhook", args.host, args.port)
    serve(create_app(), args.host, args.port, on_signal=lambda _sig: None)
    return 0
