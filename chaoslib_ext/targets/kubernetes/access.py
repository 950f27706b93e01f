"""The Kubernetes API access the driver needs, in the stack's namespace only: the Role of a scheduled game day.

One table, read by ``gameday schedule`` to write the Role, and checked by a test against the requests the driver
actually sends (tests/unit/test_kubernetes_access.py): a new API call without its row here fails that test, and
a row no call needs fails it too, so the Role stays the least the driver can work with.
"""
from __future__ import annotations

from dataclasses import dataclass

from chaoslib_ext.targets.kubernetes.driver import FAULT_TOKEN_SECRET
from chaoslib_ext.targets.kubernetes.recovery import MONGO_PVC


@dataclass(frozen=True)
class Access:
    group: str
    """The API group: "" for the core group."""
    resource: str
    """A resource or ``resource/subresource``, as RBAC names it."""
    verbs: tuple[str, ...]
    why: str
    names: tuple[str, ...] = ()
    """RBAC resourceNames: when the driver only ever touches these objects."""


API_ACCESS: tuple[Access, ...] = (
    Access("", "pods", ("get", "list", "delete"),
           "instances and their restart counts; the kill (read, confirm; kill mode delete: chaosk8s terminate_pods); "
           "the data-directory wipe deletes mongo-0"),
    # chaosk8s exec_in_pods opens a websocket: a GET, which API servers from 1.35 also authorise as create.
    Access("", "pods/exec", ("get", "create"), "the kill in restart mode: chaosk8s exec_in_pods"),
    Access("", "pods/proxy", ("get", "update", "delete"),
           "the processors' fault hook: PUT/DELETE /_gameday/fault; each replica's own /health while it is unready"),
    Access("", "services/proxy", ("get", "update", "delete"), "the provider simulator's fault API: /_faults"),
    Access("", "secrets", ("get",), "the fault token (X-Gameday-Token) of the stack's fault APIs",
           names=(FAULT_TOKEN_SECRET,)),
    Access("", "persistentvolumeclaims", ("delete",), "the data-directory wipe deletes the mongo member's claim",
           names=(MONGO_PVC,)),
    Access("apps", "deployments", ("get", "patch"), "component holds: scale to 0 and back"),
    Access("apps", "statefulsets", ("get", "patch"), "component holds: scale to 0 and back"),
    Access("networking.k8s.io", "networkpolicies", ("list", "create", "delete"),
           "partitions (chaosk8s create_network_policy / remove_network_policy), the sweep"),
    Access("batch", "jobs", ("list", "create", "delete"), "the partition and hold reapers, the sweep"),
)


def role_rules() -> list[dict]:
    """``API_ACCESS`` as the rules of an RBAC Role."""
    rules = []
    for access in API_ACCESS:
        rule: dict = {"apiGroups": [access.group], "resources": [access.resource], "verbs": list(access.verbs)}
        if access.names:
            rule["resourceNames"] = list(access.names)
        rules.append(rule)
    return rules
