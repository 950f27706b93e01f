"""The game-day Role, derived from the driver's table of API calls, on a real API server: the ServiceAccount can
do exactly what the driver needs, in its namespace, and nothing else (`kubectl auth can-i`, impersonated)."""
from __future__ import annotations

import re

import pytest
import yaml
from kind_cluster import Kube
from workloads import SCHEDULED_GAMEDAY, rbac_documents

from chaoslib_ext.targets.kubernetes.access import API_ACCESS, role_rules

pytestmark = pytest.mark.timeout(300, func_only=True)


def granted(kube: Kube, namespace: str, user: str) -> set[tuple[str, str, str]]:
    """(resource[.group], resource name or "", verb) for every resource rule `can-i --list` reports for user."""
    rules = set()
    for line in kube.run("auth", "can-i", "--list", "-n", namespace, f"--as={user}").splitlines()[1:]:
        if not line.strip() or line[0].isspace():
            continue  # a non-resource URL
        resource, _, names, verbs = re.split(r"\s{2,}", line.strip())
        for verb in verbs.strip("[]").split():
            for name in names.strip("[]").split() or [""]:
                rules.add((resource, name, verb))
    return rules


def needed() -> set[tuple[str, str, str]]:
    return {(a.resource + (f".{a.group}" if a.group else ""), name, verb)
            for a in API_ACCESS for verb in a.verbs for name in (a.names or ("",))}


def test_the_gameday_role_grants_exactly_the_drivers_calls(kube: Kube, namespace: str):
    docs = rbac_documents(namespace)
    assert next(d for d in docs if d["kind"] == "Role")["rules"] == role_rules(), \
        f"{SCHEDULED_GAMEDAY.name} is not what `gameday schedule` writes from the driver's table"
    kube.apply(yaml.safe_dump_all(docs), namespace)
    gameday = f"system:serviceaccount:{namespace}:gameday"
    anybody = f"system:serviceaccount:{namespace}:no-role"  # what every authenticated identity may do anyway

    def extra_rules():
        extra = granted(kube, namespace, gameday) - granted(kube, namespace, anybody)
        return extra if extra == needed() else None
    extra = kube.wait_for("the Role's rules in force", extra_rules, timeout=30, every=1)
    assert extra == needed()
    assert granted(kube, "kube-system", gameday) == granted(kube, "kube-system", anybody), \
        "the Role reaches outside its namespace"


@pytest.mark.parametrize("verb, resource, allowed", [
    ("create", "pods --subresource=exec", True),
    ("update", "pods --subresource=proxy", True),
    ("get", "secrets/gameday-fault-token", True),
    ("delete", "persistentvolumeclaims/data-mongo-0", True),
    ("patch", "statefulsets.apps", True),
    ("get", "secrets/another-secret", False),
    ("list", "secrets", False),
    ("delete", "persistentvolumeclaims/another-claim", False),
    ("create", "pods", False),
    ("delete", "deployments.apps", False),
    ("create", "roles.rbac.authorization.k8s.io", False),
])
def test_can_i_answers_for_the_gameday_service_account(kube: Kube, namespace: str, verb, resource, allowed):
    kube.apply(yaml.safe_dump_all(rbac_documents(namespace)), namespace)
    command = ["auth", "can-i", verb, *resource.split(), "-n", namespace,
               f"--as=system:serviceaccount:{namespace}:gameday"]
    answer = kube.proc(*command).stdout.strip()
    assert answer == ("yes" if allowed else "no"), f"kubectl {' '.join(command)}: {answer}"
