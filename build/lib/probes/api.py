"""Probes of the processor API, from the user's side (through the service address, like CUJ-1)."""
from __future__ import annotations

import time

import httpx
from chaoslib.types import Configuration, Secrets

from chaoslib_ext.arguments import number
from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets import from_configuration

__all__ = ["api_status_code"]


def api_status_code(
    path: str = "/health", timeout: float = 2.0, settle_timeout: float = 0.0,
    configuration: Configuration = None, secrets: Secrets = None,
) -> int:
    """The HTTP status the processor API answers ``path`` with; 0 when nothing answers within ``timeout``.

    ``/health`` is 200 when the processor reaches MongoDB, the whole of CUJ-1's path (Processor API -> Mongo), and
    503 without it. Kafka does not change the code (``"status": "degraded", "kafka": false`` in the body): CUJ-2's
    probes judge ingestion. A steady-state tolerance of ``200`` therefore checks that users are served.

    ``settle_timeout`` > 0 asks again, once a second, until the answer is 200 or that many seconds have passed,
    and returns the last answer: for an after-fault check of "healthy again", where a pipeline catching up on
    its backlog may leave the API slow for a while after the fault ends.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidArgument(f"path must start with '/', got {path!r}")
    settle_timeout = number("settle_timeout", settle_timeout, at_least=0, at_most=3600)
    with from_configuration(configuration, secrets) as target:
        url = target.endpoint("processor_api") + path
        deadline = time.monotonic() + settle_timeout
        while True:
            try:
                status = httpx.get(url, timeout=timeout).status_code
            except httpx.HTTPError:
                status = 0
            if status == 200 or time.monotonic() >= deadline:
                return status
            time.sleep(1.0)
