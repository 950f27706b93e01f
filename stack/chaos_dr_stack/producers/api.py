"""The producers' HTTP API: /health, /metrics, /acks, /inject and /rate."""
from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette_exporter import PrometheusMiddleware, handle_metrics

from chaos_dr_stack.producers.ledger import AckLedger

INJECT_TOPICS = ("gpu-events", "token-events")
MAX_RATE = 100_000.0


class InjectRequest(BaseModel):
    topic: str
    raw: str
    key: str | None = None


class RateRequest(BaseModel):
    rate: float = Field(ge=0, le=MAX_RATE, description="events per second per producer; 0 pauses")


def inject(producer: Producer, topic: str, raw: bytes, key: bytes | None, timeout: float = 5.0) -> dict:
    """Send raw bytes and wait for the broker's acknowledgement."""
    result: dict = {}

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        result["error"] = err
        result["partition"], result["offset"] = msg.partition(), msg.offset()

    producer.produce(topic, value=raw, key=key, on_delivery=on_delivery)
    producer.flush(timeout)
    if "error" not in result:
        raise TimeoutError(f"no acknowledgement from the broker within {timeout}s")
    if result["error"] is not None:
        raise KafkaException(result["error"])
    return {"topic": topic, "partition": result["partition"], "offset": result["offset"]}


def create_app(
    ledger: AckLedger, inject_producer: Producer, kafka_ok: Callable[[], bool], set_rate: Callable[[float], None]
) -> FastAPI:
    app = FastAPI(title="producers", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(PrometheusMiddleware, app_name="producers", group_paths=True)
    app.add_route("/metrics", handle_metrics)

    @app.get("/health")
    def health() -> JSONResponse:
        kafka = kafka_ok()
        return JSONResponse({"status": "ok" if kafka else "down", "kafka": kafka}, status_code=200 if kafka else 503)

    @app.get("/acks")
    def acks() -> dict:
        return {"producers": ledger.snapshot()}

    @app.post("/inject")
    def inject_raw(body: InjectRequest) -> dict:
        if body.topic not in INJECT_TOPICS:
            raise HTTPException(status_code=400, detail=f"topic {body.topic!r} is not one of {list(INJECT_TOPICS)}")
        key = body.key.encode() if body.key is not None else None
        try:
            return inject(inject_producer, body.topic, body.raw.encode(), key)
        except (KafkaException, BufferError, TimeoutError) as exc:
            raise HTTPException(status_code=503, detail=f"inject to {body.topic!r} failed: {exc}") from None

    @app.post("/rate")
    def rate(body: RateRequest) -> dict:
        set_rate(body.rate)
        return {"rate": body.rate}

    return app
