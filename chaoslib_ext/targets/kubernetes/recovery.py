"""Disaster recovery on Kubernetes: destroy data, hold components, and drive the backup agent (the interface of ``Target``).

Mixed into the driver, which provides ``namespace``, ``settings``, ``endpoint``, ``mongo_uri``, ``_api``, ``_call``,
``_batch`` and ``_delete_job``.
"""
from __future__ import annotations

import secrets as random_tokens
import time
from typing import Any


from chaoslib_ext.errors import InvalidArgument, TargetUnreachable
from chaoslib_ext.targets.base import fault_ttl
from chaoslib_ext.targets.stack_http import call_backup_agent
from chaoslib_ext.targets.kubernetes.holds import (
    COMPONENT_LABEL, HOLD_FAULT, REPLICAS_BEFORE_ANNOTATION, hold_body, patch_workload, read_workload, release_hold,
    reaper_job,
)
from chaoslib_ext.targets.kubernetes.objects import (
    CHAOS_MADE, FAULT_LABEL, MANAGED_BY_LABEL, SUBSTITUTE_ANNOTATION, expiry_of,
)

DATA_SCOPES = ("database", "data-directory")
MONGO_POD, MONGO_PVC = "mongo-0", "data-mongo-0"
"""The StatefulSet's one member and its volume claim (volumeClaimTemplates ``data``)."""
MONGO_MEMBER = "mongo-0.mongo.{namespace}.svc.cluster.local:27017"
START_TIMEOUT_SECONDS = 180.0
"""A started component must be ready again within this: image already on the node, a few probe periods."""
RESTORE_HOLD_SECONDS = 900.0
"""The processors' hold while a restore runs: the 15 min RTO target; the reaper starts them at its expiry even if
this process dies mid-restore."""
AGENT_TIMEOUT_SECONDS = 120.0
ALREADY_INITIALIZED, COMMAND_NOT_FOUND = 23, 59
"""MongoDB's error codes for a replica set initiated before, and for a command the server does not have."""


class KubernetesRecovery:
    # --- the backup agent, through its endpoint --------------------------------------------------------------
    def _agent(self, method: str, path: str, timeout: float = AGENT_TIMEOUT_SECONDS, **kwargs: Any) -> Any:
        return call_backup_agent(self.endpoint("backup"), method, path, timeout, **kwargs)

    def backups(self, verify: bool = False) -> dict:
        return self._agent("GET", "/backups", params={"verify": str(bool(verify)).lower()})

    def take_backup(self) -> dict:
        return self._agent("POST", "/backups")

    def corrupt_backup(self, mode: str = "truncate", ttl_seconds: float = 300.0) -> dict:
        return self._agent("PUT", "/faults/corrupt-backup", json={"mode": mode, "ttl_seconds": ttl_seconds})

    def heal_backup_corruption(self) -> dict:
        return self._agent("DELETE", "/faults/corrupt-backup")

    def restore(self, backup_id: str | None = None, until: float | None = None, replay: bool = True) -> dict:
        body: dict[str, Any] = {"replay": bool(replay)}
        if backup_id is not None:
            body["backup_id"] = backup_id
        if until is not None:
            body["until"] = until
        stopped = self.stop_component("processor", RESTORE_HOLD_SECONDS)
        try:
            report = self._agent("POST", "/restores", json=body, timeout=RESTORE_HOLD_SECONDS)
        finally:
            started = self.start_component("processor")
        return {**report, "processors_stopped_at": stopped["stopped_at"],
                "processors_started_at": started["started_at"]}

    # --- component holds ---------------------------------------------------------------------------------------
    def _apps(self):
        from kubernetes import client

        return client.AppsV1Api(self._api)

    def substitutions(self) -> list[str]:
        """What the stack's workloads say stands in for the real thing (the annotation the offline overlay,
        deploy/kind/offline, puts on MongoDB's StatefulSet): "mongo: SecantusDB (...)"."""
        found = self._call("read workload mongo", read_workload, self._apps(), self.namespace, "mongo")
        note = ((found[1].metadata.annotations or {}).get(SUBSTITUTE_ANNOTATION) if found else None)
        return [f"mongo: {note}"] if note else []

    def stop_component(self, component: str, ttl_seconds: float) -> dict:
        ttl_seconds = fault_ttl(ttl_seconds)
        found = self._call(f"read workload {component}", read_workload, self._apps(), self.namespace, component)
        if found is None:
            raise InvalidArgument(f"no Deployment or StatefulSet {component!r} in namespace {self.namespace!r}")
        kind, workload = found
        annotations = workload.metadata.annotations or {}
        if REPLICAS_BEFORE_ANNOTATION in annotations:  # held already: keep the first hold and its reaper
            return {"component": component, "stopped_at": time.time(), "expires_at": expiry_of(workload.metadata),
                    "replicas_before": int(annotations[REPLICAS_BEFORE_ANNOTATION]), "already_held": True}
        before = int(workload.spec.replicas or 0)
        stopped_at = time.time()
        expires_at = stopped_at + float(ttl_seconds)
        name = f"chaos-hold-{component}-{int(stopped_at)}-{random_tokens.token_hex(3)}"
        # The reaper first: a hold must never exist without what ends it.
        self._call("create the hold's reaper Job", self._batch().create_namespaced_job, self.namespace,
                   reaper_job(name, component, self.namespace, expires_at, self.settings.reaper_image))
        try:
            self._call(f"scale {kind} {component} to 0", patch_workload, self._apps(), self.namespace, kind,
                       component, hold_body(before, expires_at))
        except Exception:
            self._delete_job(name)
            raise
        return {"component": component, "kind": kind, "stopped_at": stopped_at, "expires_at": expires_at,
                "replicas_before": before, "reaper": name}

    def start_component(self, component: str) -> dict:
        restored = self._call(f"scale {component} back", release_hold, self._apps(), self.namespace, component)
        for job in self._call("list Jobs", self._batch().list_namespaced_job, self.namespace,
                              label_selector=f"{MANAGED_BY_LABEL}={CHAOS_MADE},{COMPONENT_LABEL}={component}").items:
            labels = job.metadata.labels or {}
            if labels.get(FAULT_LABEL) == HOLD_FAULT and labels.get(COMPONENT_LABEL) == component:
                self._delete_job(job.metadata.name)
        if restored is None:
            return {"component": component, "was_stopped": False, "started_at": time.time()}
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            found = self._call(f"read workload {component}", read_workload, self._apps(), self.namespace, component)
            ready = int((found[1].status.ready_replicas or 0) if found else 0)
            if ready >= restored:
                return {"component": component, "was_stopped": True, "started_at": time.time(),
                        "replicas": restored}
            if time.monotonic() > deadline:
                raise TargetUnreachable(f"{component}: {ready} of {restored} replicas ready "
                                        f"{START_TIMEOUT_SECONDS:g} s after scaling it back")
            time.sleep(0.5)

    # --- data destruction --------------------------------------------------------------------------------------
    def destroy_data(self, scope: str = "database") -> dict:
        if scope not in DATA_SCOPES:
            raise InvalidArgument(f"scope {scope!r} is not one of {', '.join(DATA_SCOPES)}")
        if scope == "database":
            return self._drop_database()
        destroyed_at = self._wipe_mongo_volume()
        ready_at, replica_set = self._initiate_replica_set()
        return {"scope": scope, "destroyed_at": destroyed_at, "pvc": MONGO_PVC, "database_ready_at": ready_at,
                "replica_set": replica_set}

    def _drop_database(self) -> dict:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient = MongoClient(self.mongo_uri(), serverSelectionTimeoutMS=5000)
        try:
            destroyed_at = time.time()
            client.drop_database(self.database)
        except PyMongoError as exc:
            raise TargetUnreachable(f"dropping database {self.database} at {self.mongo_uri()} failed: {exc}") from exc
        finally:
            client.close()
        return {"scope": "database", "destroyed_at": destroyed_at, "database": self.database}

    def _wipe_mongo_volume(self) -> float:
        """Delete the member's claim and pod together: the StatefulSet recreates both, the volume empty."""
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        destroyed_at = time.time()
        # The claim waits (pvc-protection) until the pod is gone; then both come back new.
        self._call(f"delete PVC {MONGO_PVC}", core.delete_namespaced_persistent_volume_claim, MONGO_PVC,
                   self.namespace)
        self._call(f"delete pod {MONGO_POD}", core.delete_namespaced_pod, MONGO_POD, self.namespace,
                   body=client.V1DeleteOptions(grace_period_seconds=0))
        return destroyed_at

    def _initiate_replica_set(self) -> tuple[float, str]:
        """An empty data directory holds no replica-set configuration: initiate it again, as mongo-init did.
        Returns when the member answered, and what was done: ``initiated``, ``already initiated``, or, for a
        server without ``replSetInitiate`` (the SecantusDB stand-in, a replica set by its own settings), the
        member it says it is, checked as the offline overlay's mongo-init checks it."""
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        member = MONGO_MEMBER.format(namespace=self.namespace)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            client: MongoClient = MongoClient(self.mongo_uri(), serverSelectionTimeoutMS=2000)
            try:
                done = _initiate(client, member)
            except PyMongoError as exc:
                if time.monotonic() > deadline:
                    raise TargetUnreachable(f"the new mongo member did not answer within "
                                            f"{START_TIMEOUT_SECONDS:g} s: {exc}") from exc
                time.sleep(1)
                continue
            finally:
                client.close()
            return time.time(), done


def _initiate(client, member: str) -> str:
    """One ``replSetInitiate`` of rs0 with ``member``; what was done, as ``_initiate_replica_set`` reports it. A
    server that does not answer raises PyMongoError (the caller retries); a refusal raises TargetUnreachable."""
    from pymongo.errors import OperationFailure

    try:
        client.admin.command("replSetInitiate", {"_id": "rs0", "members": [{"_id": 0, "host": member}]})
        return "initiated"
    except OperationFailure as exc:
        if exc.code == ALREADY_INITIALIZED:  # someone else did it
            return "already initiated"
        if exc.code == COMMAND_NOT_FOUND:
            return replica_set_membership(client.admin.command("hello"), "rs0", member)
        raise TargetUnreachable(f"initiating replica set rs0 failed: {exc}") from exc


def replica_set_membership(hello: dict, replica_set: str, member: str) -> str:
    """What a server without ``replSetInitiate`` says of itself, as a member of ``replica_set`` at ``member``;
    TargetUnreachable when it is not one."""
    if hello.get("setName") != replica_set or member not in (hello.get("hosts") or []) \
            or not hello.get("isWritablePrimary"):
        raise TargetUnreachable(f"the new mongo member cannot initiate a replica set, and its hello names set "
                                f"{hello.get('setName')!r}, hosts {hello.get('hosts')!r}, writable primary "
                                f"{bool(hello.get('isWritablePrimary'))}: not {replica_set!r} with {member} as its "
                                "primary")
    return f"a member of {replica_set} by its own settings, its writable primary (no replSetInitiate)"
