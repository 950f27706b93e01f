"""The provider simulator and the services that call it, as real processes on free ports (no Kafka, no Mongo)."""
from __future__ import annotations

import secrets
import sys

import httpx

from service_fixtures import Proc, Services, wait_http_ok

TOKEN_ENV = "GAMEDAY_FAULT_TOKEN"
START_TIMEOUT = 60.0
"""Seconds for a service to answer /health: ~2 s on a quiet machine, 10-15 s measured with 5 helpers' tests running."""


class Simulator:
    """A running simulator and its fault API."""

    def __init__(self, proc: Proc, token: str):
        self.proc = proc
        self.url = proc.url
        self.headers = {"X-Gameday-Token": token}
        # One client for the module: httpx.get() builds a new client (and TLS context) per call, ~0.3 s on a busy box.
        self.http = httpx.Client(base_url=self.url, timeout=5)

    def fail(self, provider: str, **body) -> dict:
        response = self.http.put(f"/_faults/{provider}", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def heal(self, provider: str | None = None) -> dict:
        path = "/_faults" if provider is None else f"/_faults/{provider}"
        response = self.http.delete(path, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def faults(self) -> list[dict]:
        return self.http.get("/_faults", headers=self.headers).json()["faults"]


def start_simulator(services: Services, port: int) -> Simulator:
    token = secrets.token_hex(16)
    proc = services.spawn("provider-simulator", [sys.executable, "-m", "chaos_dr_stack.providers", "--host", "127.0.0.1",
                                                 "--port", str(port)], port, env={TOKEN_ENV: token})
    wait_http_ok(proc, timeout=START_TIMEOUT)
    return Simulator(proc, token)


def start_service(services: Services, module: str, port: int, simulator: Simulator, *extra: str) -> Proc:
    proc = services.spawn(module, [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port),
                                   "--providers-url", simulator.url, *extra], port)
    wait_http_ok(proc, timeout=START_TIMEOUT)
    return proc
