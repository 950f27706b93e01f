"""Prometheus' HTTP API on a target, for actions and probes alike: one instant query, errors mapped to the
framework's own."""
from __future__ import annotations

from typing import Any

import httpx

from chaoslib_ext.errors import InvalidArgument, TargetUnreachable
from chaoslib_ext.targets.base import Target


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
