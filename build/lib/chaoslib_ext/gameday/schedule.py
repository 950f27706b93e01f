"""``gameday schedule``: run a suite on a cron schedule, as a Kubernetes CronJob or a crontab line.

The CronJob runs ``gameday gate SUITE --target kubernetes`` inside the cluster under its own ServiceAccount,
whose Role grants only what the Kubernetes target needs, and only in the stack's namespace: a scheduled game
day cannot touch anything outside it, whatever the experiments say. The image is the stack's image with the
repository's ``experiments/`` and ``deploy/monitoring/`` in its working directory (``/opt/gameday``).
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from chaoslib_ext.targets.kubernetes.settings import (
    ALLOWED_CONTEXTS_ENV, ALLOWED_NAMESPACES_ENV, CONTEXT_ENV, IN_CLUSTER, IN_POD_ENV, NAMESPACE_ENV,
)

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}),
)
DEFAULT_IMAGE = "gameday-stack:dev"
DEFAULT_NAME = "gameday"
WORKDIR = "/opt/gameday"


class CronError(ValueError):
    """A cron expression neither cron nor Kubernetes would accept; the message names the field."""


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    number = names.get(text.upper()) if text.upper() in names else (int(text) if text.isdigit() else None)
    if number is None:
        raise CronError(f"{name}: {text!r} is not a number{' or a name' if names else ''}")
    if not low <= number <= high:
        raise CronError(f"{name}: {number} is outside {low}-{high}")
    return number


def validate_cron(expression: str) -> str:
    """The expression, normalised to single spaces; CronError naming the bad field otherwise."""
    text = " ".join(str(expression).split())
    if text.lower() in MACROS:
        return text.lower()
    if text.startswith("@"):
        raise CronError(f"unknown macro {text!r}; use one of {', '.join(MACROS)}")
    parts = text.split(" ")
    if len(parts) != 5:
        raise CronError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)} in {text!r}")
    for part, (name, low, high, names) in zip(parts, FIELDS):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise CronError(f"{name}: step {step!r} must be a positive number")
            if base == "*":
                continue
            if not base:
                raise CronError(f"{name}: empty value in {part!r}")
            first, dash, last = base.partition("-")
            start = _value(first, name, low, high, names)
            if dash:
                end = _value(last, name, low, high, names)
                if end < start:
                    raise CronError(f"{name}: range {base!r} runs backwards")
            elif step:
                raise CronError(f"{name}: a step needs a range or *, got {item!r}")
    return text


def _job_name(suite_name: str, name: str | None) -> str:
    raw = name or (DEFAULT_NAME if suite_name == DEFAULT_NAME else f"{DEFAULT_NAME}-{suite_name}")
    cleaned = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:52]  # CronJob names: <= 52 characters
    if not cleaned:
        raise ValueError(f"cannot make a Kubernetes name from {raw!r}")
    return cleaned


def pod_environment(namespace: str) -> dict[str, str]:
    """The game-day pod's environment: the blast-radius settings the gate and the driver both check
    (chaoslib_ext.targets.kubernetes.settings). In the cluster there is no kubeconfig: the context is ``in-cluster``
    (the pod's ServiceAccount, whose Role is bound in this namespace only), and chaosk8s needs CHAOSTOOLKIT_IN_POD
    to use it too. The allow-lists name exactly this context and namespace."""
    return {
        "GAMEDAY_TARGET": "kubernetes",
        CONTEXT_ENV: IN_CLUSTER,
        ALLOWED_CONTEXTS_ENV: IN_CLUSTER,
        IN_POD_ENV: "true",
        NAMESPACE_ENV: namespace,
        ALLOWED_NAMESPACES_ENV: namespace,
    }


def kubernetes_manifest(suite_path: str, suite_name: str, cron: str, namespace: str = "app",
                        image: str = DEFAULT_IMAGE, name: str | None = None) -> str:
    """A multi-document YAML: ServiceAccount, Role, RoleBinding and CronJob, all in ``namespace``."""
    cron = validate_cron(cron)
    job = _job_name(suite_name, name)
    labels = {"app.kubernetes.io/name": "gameday", "app.kubernetes.io/component": job,
              "app.kubernetes.io/managed-by": "gameday-schedule"}
    meta = {"name": job, "namespace": namespace, "labels": labels}
    # Exactly what the driver calls (checked against its requests); imported here: it loads the driver.
    from chaoslib_ext.targets.kubernetes.access import role_rules

    rules = role_rules()
    run_dir = "/var/lib/gameday/runs"
    script = (
        f"gameday gate {shlex.quote(suite_path)} --target kubernetes --var namespace={namespace} "
        f"--run-dir {run_dir}; code=$?; cat {run_dir}/summary.md 2>/dev/null; exit $code"
    )
    documents = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": job},
         "subjects": [{"kind": "ServiceAccount", "name": job, "namespace": namespace}]},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": {
            "schedule": cron,
            "concurrencyPolicy": "Forbid",  # two game days at once would measure each other's faults
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {
                "backoffLimit": 0,  # a failed gate is a finding, not a flake to retry
                "activeDeadlineSeconds": 3600,
                "template": {"metadata": {"labels": labels}, "spec": {
                    "serviceAccountName": job,
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001},
                    "containers": [{
                        "name": "gameday",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "workingDir": WORKDIR,
                        "command": ["/bin/sh", "-c", script],
                        "env": [{"name": k, "value": v} for k, v in pod_environment(namespace).items()] + [
                            # The image's user has no home directory: the report's plotting caches go here.
                            {"name": "HOME", "value": "/var/lib/gameday"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                      "limits": {"memory": "1Gi"}},
                        "volumeMounts": [{"name": "runs", "mountPath": "/var/lib/gameday"}],
                    }],
                    "volumes": [{"name": "runs", "emptyDir": {}}],
                }},
            }},
        }},
    ]
    header = (f"# Generated by: gameday schedule {suite_path} --cron {shlex.quote(cron)} --namespace {namespace}"
              + (f" --image {image}" if image != DEFAULT_IMAGE else "") + (f" --name {name}" if name else "") + "\n"
              f"# Runs suite {suite_name} in the cluster; apply with: kubectl apply -f <this file>\n")
    return header + yaml.safe_dump_all(documents, sort_keys=False, width=120)


def crontab_line(suite_path: Path, cron: str, repo: Path, log: str = ".gameday/cron.log") -> str:
    """One crontab line: the gate on the local target, never two at once (flock), output appended to ``log``."""
    cron = validate_cron(cron)
    gameday = repo / ".venv" / "bin" / "gameday"
    # `%` ends the command in crontab unless escaped.
    run_dir = ".gameday/runs/scheduled-$(date +\\%Y\\%m\\%d-\\%H\\%M\\%S)"
    command = (f"cd {shlex.quote(str(repo))} && mkdir -p .gameday && flock -n .gameday/cron.lock {shlex.quote(str(gameday))} gate "
               f"{shlex.quote(str(suite_path))} --target local --quiet --run-dir {run_dir} >> {log} 2>&1")
    return f"{cron} {command}"
