"""Probes of the processor API, from the user's side (through the service address, like CUJ-1)."""
from __future__ import annotations

import httpx
from chaoslib.types import Configuration, Secrets

from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets import from_configuration

__all__ = ["api_status_code"]


def api_status_code(
    path: str = "/health", timeout: float = 2.0, configuration: Configuration = None, secrets: Secrets = None
) -> int:
    """The HTTP status the processor API answers ``path`` with; 0 when nothing answers within ``timeout``.

    ``/health`` is 200 only when the processor reaches both Kafka and MongoDB. A steady-state tolerance of
    ``200`` therefore checks the whole of CUJ-1's path.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidArgument(f"path must start with '/', got {path!r}")
    target = from_configuration(configuration, secrets)
    try:
        url = target.endpoint("processor_api") + path
        try:
            return httpx.get(url, timeout=timeout).status_code
        except httpx.HTTPError:
            return 0
    finally:
        target.close()
