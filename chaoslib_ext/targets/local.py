"""The local target: a stack of real processes run by ``chaos_dr_stack.local.runner``, reached through its control API."""
from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from chaoslib_ext.errors import InvalidArgument, TargetMisconfigured, TargetUnreachable
from chaoslib_ext.targets.stack_http import call_backup_agent, fetch_producer_acks
from chaoslib_ext.targets.base import (
    DATA_SCOPES, PROVIDERS, DisasterRecovery, Healed, HttpErrorFault, Instance, Killed, Target,
    allow_list, validate_provider_fault,
)

DEFAULT_CONTROL_URL = "http://127.0.0.1:18000"
"""Where ``gameday stack up`` puts the control API when no base port is given (base port 18000)."""

CONTROL_TIMEOUT_SECONDS = 5.0
"""The control API answers from memory; 5 s only covers a loaded 2-core machine."""


ALLOWED_HOSTS_ENV = "GAMEDAY_ALLOWED_HOSTS"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_control_url(url: str, env: Mapping[str, str] | None = None) -> str:
    """``url`` if the local target may reach it: on a loopback address, or its host listed in
    ``$GAMEDAY_ALLOWED_HOSTS`` (comma-separated). The local stack runs on this machine, so a typo in a URL cannot
    reach into another one; ``gameday`` checks this before a run, and every local target again when it is made."""
    env = os.environ if env is None else env
    if not str(url).startswith(("http://", "https://")):
        raise TargetMisconfigured(f"local_control_url {url!r} is not an http(s) URL, e.g. {DEFAULT_CONTROL_URL}")
    host = (urlsplit(str(url)).hostname or "").lower()
    if not host:
        raise TargetMisconfigured(f"local_control_url {url!r} names no host")
    allowed_hosts = allow_list(env.get(ALLOWED_HOSTS_ENV))
    if not _is_loopback(host) and host not in allowed_hosts:
        raise TargetMisconfigured(
            f"refusing the local target at {url}: {host} is not a loopback address and not in "
            f"{ALLOWED_HOSTS_ENV} ({', '.join(allowed_hosts) or 'empty'}). The local stack runs on this machine; "
            f"to run against another host on purpose, export {ALLOWED_HOSTS_ENV}={host}"
        )
    return str(url).rstrip("/")


def control_url_from(configuration: Mapping[str, Any] | None, env: Mapping[str, str] | None = None) -> str:
    """The control API URL: ``local_control_url``, else ``$GAMEDAY_CONTROL_URL``, else the default; checked."""
    env = os.environ if env is None else env
    configuration = configuration or {}
    url = configuration.get("local_control_url") or env.get("GAMEDAY_CONTROL_URL") or DEFAULT_CONTROL_URL
    return check_control_url(str(url), env)


class LocalTarget(Target, DisasterRecovery):
    kind = "local"

    def __init__(self, control_url: str):
        self.control_url = control_url
        self._http = httpx.Client(base_url=control_url, timeout=CONTROL_TIMEOUT_SECONDS)
        self._endpoints: dict[str, str] | None = None

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TargetUnreachable(
                f"local stack control API at {self.control_url} did not answer {method} {path}: {exc}. "
                "Is the stack up? Start it with `gameday stack up`."
            ) from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._call(method, path, **kwargs)
        if response.status_code >= 400:
            detail = response.text.strip()[:300]
            if response.status_code < 500:
                raise InvalidArgument(f"{method} {path} was refused ({response.status_code}): {detail}")
            raise TargetUnreachable(f"{method} {path} failed on the control API ({response.status_code}): {detail}")
        return response.json()

    def instances(self, component: str = "processor") -> list[Instance]:
        body = self._json("GET", "/instances", params={"component": component})
        return [
            Instance(
                name=i["name"],
                component=i["component"],
                pid=i.get("pid"),
                started_at=i.get("started_at"),
                restarts=int(i.get("restarts", 0)),
                ready=bool(i.get("ready")),
                state=i.get("state", "unknown"),
                ready_at=i.get("ready_at"),
                url=i.get("url"),
            )
            for i in body["instances"]
            if i.get("component") == component
        ]

    def _kill(self, name: str, signal: str) -> Killed:
        body = self._json("POST", f"/instances/{name}/kill", json={"signal": signal})
        return Killed(name=body["name"], pid=int(body["pid"]), signal=body["signal"], killed_at=float(body["killed_at"]))

    def _endpoint_map(self) -> dict[str, str]:
        if self._endpoints is None:
            self._endpoints = self._json("GET", "/endpoints")
        return self._endpoints

    def endpoint(self, service: str) -> str:
        endpoints = self._endpoint_map()
        if service not in endpoints:
            raise TargetMisconfigured(
                f"the local stack has no endpoint {service!r}; it has: {', '.join(sorted(endpoints))}"
            )
        return str(endpoints[service]).rstrip("/")

    def mongo_uri(self) -> str:
        return self.endpoint("mongo_uri")

    def producer_acks(self) -> list[dict]:
        return fetch_producer_acks(self.endpoint("producers"), CONTROL_TIMEOUT_SECONDS)

    def inject_http_errors(self, ratio: float, status: int, ttl_seconds: float) -> HttpErrorFault:
        body = self._json("PUT", "/faults/http-errors", json={"ratio": ratio, "status": status, "ttl_seconds": ttl_seconds})
        return HttpErrorFault(
            ratio=float(body["ratio"]), status=int(body["status"]), ttl_seconds=float(body["ttl_seconds"]),
            applied_at=float(body["applied_at"]), expires_at=float(body["expires_at"]),
            applied_to=tuple(body.get("applied_to", ())), pending=tuple(body.get("pending", ())),
        )

    def heal_http_errors(self) -> Healed:
        body = self._json("DELETE", "/faults/http-errors")
        return Healed(healed_at=float(body["healed_at"]), was_active=bool(body["was_active"]),
                      healed=tuple(body.get("healed", ())))

    def active_faults(self) -> list[dict]:
        return list(self._json("GET", "/faults")["faults"])

    def partition(self, between: list[str], mode: str = "hold", ttl_seconds: float = 30.0, **params: float) -> dict:
        return self._json("PUT", "/faults/kafka-partition",
                          json={"between": list(between), "mode": mode, "ttl_seconds": ttl_seconds, **params})

    def isolate_kafka_node(self, node: str, mode: str = "hold", ttl_seconds: float = 30.0) -> dict:
        return self._json("PUT", "/faults/kafka-partition",
                          json={"isolate": node, "mode": mode, "ttl_seconds": ttl_seconds})

    def heal_partition(self) -> dict:
        return self._json("DELETE", "/faults/kafka-partition")

    def close(self) -> None:
        self._http.close()

    # --- provider faults: the runner passes them to the provider simulator ---
    def fail_provider(self, provider: str, mode: str, ttl_seconds: float, **params: float) -> dict:
        body = validate_provider_fault(provider, mode, ttl_seconds, **params)
        return self._json("PUT", f"/faults/providers/{provider}", json=body)

    def restore_provider(self, provider: str) -> dict:
        if provider not in PROVIDERS:
            raise InvalidArgument(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}")
        return self._json("DELETE", f"/faults/providers/{provider}")

    def restore_all_providers(self) -> dict:
        return self._json("DELETE", "/faults/providers")
    # Disaster recovery: the runner's component holds and the backup agent (docs/local-stack-contract.md).
    RESTORE_HOLD_SECONDS = 900.0
    """How long the processors stay cut from Kafka while a restore runs, at most: the 15 min RTO target. The fault
    proxy heals the cut at its expiry even if this process dies mid-restore."""

    def _agent(self, method: str, path: str, timeout: float = CONTROL_TIMEOUT_SECONDS, **kwargs: Any) -> Any:
        return call_backup_agent(self.endpoint("backup"), method, path, timeout, **kwargs)

    def destroy_data(self, scope: str = "database") -> dict:
        if scope not in DATA_SCOPES:
            raise InvalidArgument(f"scope {scope!r} is not one of {', '.join(DATA_SCOPES)}")
        if scope == "data-directory":
            body = self._json("POST", "/components/mongo/wipe-data", timeout=120.0)
            return {"scope": scope, "destroyed_at": float(body["wiped_at"]), "path": body["path"],
                    "database_ready_at": body.get("ready_at")}
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient = MongoClient(self.mongo_uri(), serverSelectionTimeoutMS=5000)
        try:
            destroyed_at = time.time()
            client.drop_database(self.database)
        except PyMongoError as exc:
            raise TargetUnreachable(f"dropping database ca3 at {self.mongo_uri()} failed: {exc}") from exc
        finally:
            client.close()
        return {"scope": scope, "destroyed_at": destroyed_at, "database": self.database}

    def stop_component(self, component: str, ttl_seconds: float) -> dict:
        return self._json("POST", f"/components/{component}/stop", json={"ttl_seconds": ttl_seconds}, timeout=60.0)

    def start_component(self, component: str) -> dict:
        return self._json("POST", f"/components/{component}/start", timeout=120.0)

    def backups(self, verify: bool = False) -> dict:
        return self._agent("GET", "/backups", params={"verify": str(verify).lower()}, timeout=60.0)

    def take_backup(self) -> dict:
        return self._agent("POST", "/backups", timeout=120.0)

    def restore(self, backup_id: str | None = None, until: float | None = None, replay: bool = True) -> dict:
        body: dict[str, Any] = {"replay": bool(replay)}
        if backup_id is not None:
            body["backup_id"] = backup_id
        if until is not None:
            body["until"] = until
        # The writers are frozen by cutting the processors from Kafka (a held partition with a TTL), not by
        # stopping them: held members keep their processes, so a restore counts no restart against the daily
        # budget, and the fault's TTL unfreezes them even if this run dies.
        frozen = self.partition(["processor"], "hold", self.RESTORE_HOLD_SECONDS)
        try:
            report = self._agent("POST", "/restores", json=body, timeout=self.RESTORE_HOLD_SECONDS)
        finally:
            healed = self.heal_partition()
        return {**report, "processors_frozen_at": frozen.get("applied_at"),
                "processors_resumed_at": healed.get("healed_at")}

    def corrupt_backup(self, mode: str = "truncate", ttl_seconds: float = 300.0) -> dict:
        return self._agent("PUT", "/faults/corrupt-backup", json={"mode": mode, "ttl_seconds": ttl_seconds},
                           timeout=60.0)

    def heal_backup_corruption(self) -> dict:
        return self._agent("DELETE", "/faults/corrupt-backup")
