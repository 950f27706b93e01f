"""Connections the probes share: MongoDB and Prometheus, with errors mapped to the framework's own."""
from __future__ import annotations

from typing import Any

import httpx
from pymongo import MongoClient
from pymongo.database import Database

from chaoslib_ext.errors import InvalidArgument, NoData, TargetUnreachable
from chaoslib_ext.targets import Target

DATABASE = "ca3"
"""The processor's database (docs/local-stack-contract.md)."""

MONGO_TIMEOUT_MS = 3000
"""Short enough that a dead database fails a probe quickly, long enough for a busy single-threaded server."""


def mongo(target: Target) -> tuple[MongoClient, Database]:
    client: MongoClient = MongoClient(
        target.mongo_uri(), serverSelectionTimeoutMS=MONGO_TIMEOUT_MS, connectTimeoutMS=MONGO_TIMEOUT_MS,
        socketTimeoutMS=10 * MONGO_TIMEOUT_MS,
    )
    return client, client[DATABASE]


def prometheus_query(
    target: Target, promql: str, timeout: float = 5.0, at: float | None = None
) -> list[dict[str, Any]]:
    """Run an instant query, evaluated now or ``at`` (Unix seconds); returns Prometheus's ``result`` (a vector, or
    a matrix of raw samples for a range selector). A bad query is an InvalidArgument."""
    url = target.endpoint("prometheus") + "/api/v1/query"
    params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
    try:
        response = httpx.get(url, params=params, timeout=timeout)
    except httpx.HTTPError as exc:
        raise TargetUnreachable(f"Prometheus at {url} did not answer: {exc}") from exc
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code == 400:
        raise InvalidArgument(f"Prometheus rejected the query {promql!r}: {body.get('error', response.text[:200])}")
    if response.status_code != 200 or body.get("status") != "success":
        raise TargetUnreachable(f"Prometheus query failed ({response.status_code}): {response.text[:200]}")
    return list(body["data"]["result"])


def prometheus_scalar(target: Target, promql: str) -> float:
    """The single value of ``sum(...)``-style query. No series at all is NoData, never zero."""
    result = prometheus_query(target, promql)
    if not result:
        raise NoData(f"Prometheus returned no samples for {promql!r}: the series does not exist (yet)")
    return float(result[0]["value"][1])
