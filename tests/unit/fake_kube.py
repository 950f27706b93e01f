"""A fake Kubernetes API server over real HTTP (kmock's emulator), for the driver and the official client.

kmock serves from an asyncio loop; the kubernetes client is synchronous. The server therefore runs its loop in a
thread, and the test talks to it over HTTP like to any API server. kmock ignores label selectors: a test seeds
exactly the objects it needs (and the driver filters by label itself, which the tests rely on).
"""
from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import kmock
import yaml
from aiohttp import web

RESOURCES = {
    "v1/pods": "Pod",
    "v1/secrets": "Secret",
    "batch/v1/jobs": "Job",
    "networking.k8s.io/v1/networkpolicies": "NetworkPolicy",
    "apps/v1/deployments": "Deployment",
    "apps/v1/statefulsets": "StatefulSet",
    "v1/persistentvolumeclaims": "PersistentVolumeClaim",
}


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator plus what a real API server adds on create: a uid and a creation timestamp (the driver
    makes the reaper Job the owner of the partition policy, which needs the Job's uid), and exec over a websocket."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.execs: list[dict] = []
        self.proxy_apps: dict[str, Any] = {}
        self.proxied: list[str] = []

    on_exec: Any = None
    """Called as ``on_exec(emulator, namespace, pod, container, command)`` for every exec; returns stdout text.
    It plays the container's part (e.g. a killed process makes the kubelet restart the container)."""

    async def __call__(self, raw_request):  # type: ignore[override]
        # kmock speaks HTTP only; exec is a websocket with Kubernetes' channel protocol (first byte = channel).
        if raw_request.path.endswith("/exec") and raw_request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._exec(raw_request)
        if "/proxy/" in raw_request.path and ("/pods/" in raw_request.path or "/services/" in raw_request.path):
            return await self._proxy(raw_request)
        return await super().__call__(raw_request)

    async def _proxy(self, raw_request):
        """The API server's pod and service proxies: forward to ``proxy_apps[pod or service name]`` (an ASGI app),
        or 503 as the API server answers when it cannot reach the pod."""
        self.proxied.append(f"{raw_request.method} {raw_request.path}")
        head, _, rest = raw_request.path.partition("/proxy/")
        pod = head.rsplit("/", 1)[-1].split(":", 1)[0]
        app = self.proxy_apps.get(pod)
        if app is None:
            return web.json_response({"kind": "Status", "status": "Failure", "code": 503}, status=503)
        headers = {k: v for k, v in raw_request.headers.items() if k.lower() in ("x-gameday-token", "content-type")}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{pod}") as client:
            answer = await client.request(raw_request.method, "/" + rest, headers=headers,
                                          content=await raw_request.read())
        return web.Response(status=answer.status_code, body=answer.content,
                            content_type=answer.headers.get("content-type", "application/json").split(";")[0])

    async def _exec(self, raw_request):
        _, _, _, namespace, _, pod, _ = raw_request.path.strip("/").split("/")
        command, container = raw_request.query.getall("command", []), raw_request.query.get("container")
        self.execs.append({"namespace": namespace, "pod": pod, "container": container, "command": command})
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(raw_request)
        stdout = self.on_exec(self, namespace, pod, container, command) if self.on_exec else ""
        await ws.send_bytes(b"\x01" + stdout.encode())
        await ws.send_bytes(b"\x03" + json.dumps({"metadata": {}, "status": "Success"}).encode())
        await ws.close()
        return ws

    async def _handle(self, request):  # type: ignore[override]
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            metadata = request.data.setdefault("metadata", {})
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault("creationTimestamp", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return await super()._handle(request)


class FakeKube:
    def __init__(self) -> None:
        self._started = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> "FakeKube":
        self._thread = threading.Thread(target=self._run, name="fake-kube", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"the fake API server did not start: {self._error!r}")
        for resource, kind in RESOURCES.items():
            self.kmock.resources[resource] = {"kind": kind, "namespaced": True}
        return self

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._stop = asyncio.Event()
            async with Emulator() as handler, kmock.Server(handler) as server:
                self.kmock, self.url = handler, str(server.url).rstrip("/")
                self._started.set()
                await self._stop.wait()

        try:
            self.loop.run_until_complete(serve())
        except BaseException as exc:  # reported by __enter__ or __exit__
            self._error = exc
            self._started.set()
        finally:
            self.loop.close()

    def __exit__(self, *exc_info: Any) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        if self._thread.is_alive():
            raise RuntimeError("the fake API server did not stop within 10 s")

    # --- seeding and reading ---
    def seed(self, resource: str, obj: dict) -> None:
        metadata = obj["metadata"]
        self.kmock.objects[resource, metadata.get("namespace", "app"), metadata["name"]] = obj

    def live(self, resource: str) -> dict[str, dict]:
        """The objects of ``resource`` that exist now, by name."""
        found = {}
        for (res, _namespace, name), obj in self.kmock.objects.items():
            if not obj.deleted and f"{res.group + '/' if res.group else ''}{res.version}/{res.plural}" == resource:
                found[name] = obj.raw
        return found

    def requests(self) -> list[Any]:
        return list(self.kmock)

    def write_kubeconfig(self, path: Path, context: str = "kind-gameday") -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake", "namespace": "app"}}],
            "current-context": context,
        }))
        return path


@contextmanager
def fake_kube() -> Iterator[FakeKube]:
    with FakeKube() as kube:
        yield kube


def pod(name: str, component: str = "processor", *, ready: bool = True, restarts: int = 0,
        container_id: str = "containerd://" + "ab12cd3" + "0" * 57, started: str = "2026-11-23T00:00:00Z") -> dict:
    condition = "True" if ready else "False"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "app", "labels": {"app.kubernetes.io/name": component},
                     "uid": str(uuid.uuid4())},
        "spec": {"containers": [{"name": component, "image": "gameday-stack:dev"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": condition, "lastTransitionTime": started}],
            "containerStatuses": [{
                "name": component, "ready": ready, "restartCount": restarts, "image": "gameday-stack:dev",
                "imageID": "", "containerID": container_id, "state": {"running": {"startedAt": started}},
            }],
        },
    }
