"""The agent's HTTP API (docs/local-stack-contract.md, "Backup agent")."""
from __future__ import annotations

import json
import math
import time

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.errors import PyMongoError

from chaos_dr_stack.backup import metrics
from chaos_dr_stack.backup.agent import Agent, Busy
from chaos_dr_stack.backup.corruption import FaultRequestError, NothingToCorrupt, parse
from chaos_dr_stack.backup.restore import RestoreRefused

RESTORE_FIELDS = ("backup_id", "until", "replay")


async def _json_body(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise HTTPException(400, f"body: not JSON: {raw[:100]!r}") from None


def parse_restore(body: object) -> tuple[str | None, float | None, bool]:
    if not isinstance(body, dict):
        raise HTTPException(400, 'body must be a JSON object like {"replay": true}')
    unknown = sorted(set(body) - set(RESTORE_FIELDS))
    if unknown:
        raise HTTPException(400, f"{unknown[0]}: unknown field; fields are {', '.join(RESTORE_FIELDS)}")
    backup_id = body.get("backup_id")
    if backup_id is not None and (not isinstance(backup_id, str) or not backup_id or "/" in backup_id):
        raise HTTPException(400, f"backup_id: must be a backup id from GET /backups, got {backup_id!r}")
    until = body.get("until")
    if until is not None and (isinstance(until, bool) or not isinstance(until, (int, float)) or not math.isfinite(until)
                              or until <= 0):
        raise HTTPException(400, f"until: must be Unix seconds, got {until!r}")
    replay = body.get("replay", False)
    if not isinstance(replay, bool):
        raise HTTPException(400, f"replay: must be true or false, got {replay!r}")
    return backup_id, until, replay


def create_app(agent: Agent) -> FastAPI:
    app = FastAPI(title="backup agent", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    def health() -> JSONResponse:
        body = agent.health()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        caught_up = agent.follower.caught_up_at
        metrics.CHANGELOG_LAG.set(time.time() - caught_up if caught_up else float("nan"))
        metrics.CHANGELOG_RECORDS.set(agent.follower.records)
        metrics.BACKUPS.set(len(agent.store.ids()))
        metrics.STORE_BYTES.set(agent.store.total_bytes())
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/backups")
    def backups(verify: bool = Query(False)) -> dict:
        return {"backups": agent.store.listing(verify=verify), "changelog": agent.changelog_summary(),
                "disasters": agent.store.disasters()}

    @app.post("/backups", status_code=201)
    def take_backup() -> dict:
        try:
            return agent.snapshot()
        except Busy as exc:
            raise HTTPException(409, str(exc)) from None
        except PyMongoError as exc:
            raise HTTPException(503, f"the database did not answer: {str(exc)[:300]}") from None

    @app.post("/restores")
    async def post_restore(request: Request) -> dict:
        backup_id, until, replay = parse_restore(await _json_body(request))
        import anyio

        try:
            return await anyio.to_thread.run_sync(agent.restore, backup_id, until, replay)
        except Busy as exc:
            raise HTTPException(409, str(exc)) from None
        except RestoreRefused as exc:
            raise HTTPException(409, str(exc)) from None
        except PyMongoError as exc:
            raise HTTPException(503, f"the database failed during the restore: {str(exc)[:300]}") from None

    @app.get("/faults")
    def faults() -> dict:
        return {"faults": agent.corruption.listing()}

    @app.put("/faults/corrupt-backup")
    async def corrupt(request: Request) -> dict:
        try:
            mode, ttl = parse(await _json_body(request))
        except FaultRequestError as exc:
            raise HTTPException(400, str(exc)) from None
        try:
            return agent.corrupt(mode, ttl)
        except NothingToCorrupt as exc:
            raise HTTPException(409, f"no backup to corrupt: {exc}") from None

    @app.delete("/faults/corrupt-backup")
    def heal() -> dict:
        return agent.corruption.heal()

    return app
