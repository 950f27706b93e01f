"""Component holds (docs/local-stack-contract.md, "Component holds"): stop every instance of a component for a
time-to-live, start it again, and wipe the database's data directory.

A hold is how the local target takes the database away for an outage drill and freezes the processors while a
restore runs (on Kubernetes: scale the StatefulSet or Deployment to 0). The runner starts the component again
at the hold's expiry even if nobody asks, so a hold never outlives the run that made it.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request

from chaos_dr_stack.local.supervisor import Instance

MAX_HOLD_TTL_S = 3600.0


class Holds:
    def __init__(self, instances: dict[str, Instance], mongo_data_dir: Path, clock: Callable[[], float] = time.time):
        self._instances = instances
        self._mongo_data_dir = Path(mongo_data_dir)
        self._clock = clock
        self.active: dict[str, dict] = {}
        self._expiry: dict[str, asyncio.Task] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def members(self, component: str) -> list[Instance]:
        return [i for i in self._instances.values() if i.spec.component == component]

    def _lock(self, component: str) -> asyncio.Lock:
        return self._locks.setdefault(component, asyncio.Lock())

    async def stop(self, component: str, ttl: float) -> dict:
        async with self._lock(component):
            members = self.members(component)
            await asyncio.gather(*(i.stop() for i in members))
            now = self._clock()
            hold = {"kind": "component-stopped", "component": component, "instances": [i.name for i in members],
                    "applied_at": self.active.get(component, {}).get("applied_at", now), "stopped_at": now,
                    "ttl_seconds": ttl, "expires_at": now + ttl}
            self.active[component] = hold
            previous = self._expiry.pop(component, None)
            if previous is not None:
                previous.cancel()
            self._expiry[component] = asyncio.create_task(self._expire(component, ttl))
            return hold

    async def _expire(self, component: str, ttl: float) -> None:
        await asyncio.sleep(ttl)
        self._expiry.pop(component, None)  # so start() does not cancel this very task
        await self.start(component)

    async def start(self, component: str) -> dict:
        async with self._lock(component):
            task = self._expiry.pop(component, None)
            if task is not None:
                task.cancel()
            was = self.active.pop(component, None)
            members = self.members(component)
            stopped = [i for i in members if i.state == "stopped"]
            results = await asyncio.gather(*(i.restart_after_stop() for i in stopped), return_exceptions=True)
            failed = [f"{i.name}: {r}" for i, r in zip(stopped, results) if isinstance(r, BaseException)]
            return {"component": component, "instances": [i.name for i in members], "was_stopped": was is not None,
                    "started_at": self._clock(), "failed": failed,
                    "ready_at": max((i.ready_at or 0.0 for i in members), default=None)}

    async def wipe_mongo(self) -> dict:
        members = self.members("mongo")
        async with self._lock("mongo"):
            await asyncio.gather(*(i.stop() for i in members))
            wiped_at = self._clock()
            await asyncio.to_thread(shutil.rmtree, self._mongo_data_dir, True)
            await asyncio.gather(*(i.restart_after_stop() for i in members))
        return {"path": str(self._mongo_data_dir), "wiped_at": wiped_at,
                "ready_at": max((i.ready_at or 0.0 for i in members), default=None)}

    def listing(self) -> list[dict]:
        now = self._clock()
        return [{**h, "expires_in": round(max(0.0, h["expires_at"] - now), 3)} for h in self.active.values()]

    async def release_all(self) -> None:
        for task in self._expiry.values():
            task.cancel()
        self._expiry.clear()


def holds_router(holds_of: Callable[[], Holds]) -> APIRouter:
    router = APIRouter()

    def known(component: str) -> Holds:
        holds = holds_of()
        if not holds.members(component):
            names = sorted({i.spec.component for i in holds._instances.values()})
            raise HTTPException(404, f"unknown component {component!r}; components are: {', '.join(names)}")
        return holds

    @router.post("/components/{component}/stop")
    async def stop(component: str, request: Request) -> dict:
        holds = known(component)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise HTTPException(400, 'body must be a JSON object like {"ttl_seconds": 60}')
        ttl = body.get("ttl_seconds")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl <= MAX_HOLD_TTL_S:
            raise HTTPException(400, f"ttl_seconds: must be > 0 and <= {MAX_HOLD_TTL_S:g}, got {ttl!r}")
        return await holds.stop(component, float(ttl))

    @router.post("/components/{component}/start")
    async def start(component: str) -> dict:
        result = await known(component).start(component)
        if result["failed"]:
            raise HTTPException(503, f"not ready after start: {'; '.join(result['failed'])}")
        return result

    @router.post("/components/mongo/wipe-data")
    async def wipe() -> dict:
        return await known("mongo").wipe_mongo()

    return router
