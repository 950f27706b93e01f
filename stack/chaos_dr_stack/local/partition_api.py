"""Control API routes of the Kafka partition fault (docs/local-stack-contract.md, "Runner control API").

- ``PUT /faults/kafka-partition`` ``{"between": ["processor"], "mode": "hold", "ttl_seconds": 30}`` → the fault
  as applied (``applied_at``, ``expires_at``); a bad body → 400 naming the field. Replaces any partition in force.
  ``{"isolate": "kafka-2", ...}`` cuts node 2 from the other nodes, ``{"links": [["kafka-1", "kafka-3"]], ...}``
  one link between two nodes; clients keep reaching every node.
- ``DELETE /faults/kafka-partition`` → ``{"kind", "was_active", "healed_at"}``; healing nothing is not an error.
- ``GET /faults/kafka-partition`` → ``{"active": {...} | null, "last_heal": {...} | null, "links": [...]}``;
  ``links`` counts the open connections by source (``processor``, ``producers``, ``kafka-N``, ``other``) and
  destination node.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request

from chaos_dr_stack.local.partition import PartitionRequestError, parse_partition
from chaos_dr_stack.local.proxy import KafkaProxy

PATH = "/faults/kafka-partition"


def partition_listing(proxy: KafkaProxy) -> list[dict]:
    """What ``GET /faults`` lists for the proxy: the partition in force, if any."""
    fault = proxy.active_partition()
    return [fault.describe(proxy.clock())] if fault is not None else []


def partition_router(proxy_of: Callable[[], KafkaProxy]) -> APIRouter:
    router = APIRouter()

    @router.put(PATH)
    async def put_partition(request: Request) -> dict:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise HTTPException(400, f"body: not JSON: {raw[:100]!r}") from None
        proxy = proxy_of()
        try:
            fault = parse_partition(body, proxy.clock(), proxy.node_count)
        except PartitionRequestError as exc:
            raise HTTPException(400, str(exc)) from None
        fault = proxy.set_partition(fault)
        return fault.describe(proxy.clock())

    @router.delete(PATH)
    async def delete_partition() -> dict:
        return {"kind": "kafka-partition", **proxy_of().heal_partition()}

    @router.get(PATH)
    async def get_partition() -> dict:
        proxy = proxy_of()
        fault = proxy.active_partition()
        return {"active": fault.describe(proxy.clock()) if fault else None, "last_heal": proxy.last_heal,
                "links": proxy.open_links()}

    return router
