"""HTTP calls to the stack's own services that every target makes the same way, whatever reaches them."""
from __future__ import annotations

from typing import Any

import httpx

from chaoslib_ext.errors import InvalidArgument, TargetUnreachable


def fetch_producer_acks(producers_url: str, timeout: float) -> list[dict]:
    """The producers' ack ledger (``GET /acks``): what the broker acknowledged, per producer."""
    url = producers_url + "/acks"
    try:
        response = httpx.get(url, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise TargetUnreachable(f"producers at {url} did not answer: {exc}") from exc
    return list(response.json()["producers"])


def call_backup_agent(backup_url: str, method: str, path: str, timeout: float, **kwargs: Any) -> Any:
    """One call to the backup agent's API: a 4xx is the caller's mistake, anything else the agent's."""
    url = backup_url + path
    try:
        response = httpx.request(method, url, timeout=timeout, **kwargs)
    except httpx.HTTPError as exc:
        raise TargetUnreachable(f"backup agent at {url} did not answer {method}: {exc}") from exc
    if response.status_code >= 400:
        detail = _detail(response)
        if response.status_code < 500:
            raise InvalidArgument(f"backup agent refused {method} {path} ({response.status_code}): {detail}")
        raise TargetUnreachable(f"backup agent failed {method} {path} ({response.status_code}): {detail}")
    return response.json()


def _detail(response: httpx.Response) -> str:
    """The agent's own reason: FastAPI's ``{"detail": "..."}`` unwrapped, else the body's text."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return (detail if isinstance(detail, str) else response.text.strip())[:1000]
