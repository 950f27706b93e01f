"""The driver's settings and its blast-radius guard, which runs before any request reaches a cluster."""
from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaoslib_ext.errors import TargetMisconfigured
from chaoslib_ext.targets.base import allow_list
from chaoslib_ext.targets.kubernetes.objects import STACK_NAMESPACE

# The blast-radius settings: the one definition (scope_of, check_scope) that `gameday run`/`gate` check before
# starting (chaoslib_ext.gameday.safety) and the driver checks again itself, so `chaos run` used directly is
# guarded too.
CONTEXT_KEY, CONTEXT_ENV = "kube_context", "GAMEDAY_KUBE_CONTEXT"
"""Which kube context to use (default: the kubeconfig's current context); ``in-cluster`` inside a pod."""
IN_CLUSTER = "in-cluster"
ALLOWED_CONTEXTS_ENV = "GAMEDAY_ALLOWED_CONTEXTS"
"""Comma-separated shell patterns. Only the environment can widen the allow-list: an experiment file cannot
authorise itself."""
DEFAULT_ALLOWED_CONTEXTS = ("kind-*",)
"""kind names its contexts ``kind-<cluster>``; anything else must be allowed on purpose."""
NAMESPACE_KEY, NAMESPACE_ENV = "namespace", "GAMEDAY_NAMESPACE"
ALLOWED_NAMESPACES_ENV = "GAMEDAY_ALLOWED_NAMESPACES"
IN_POD_ENV = "CHAOSTOOLKIT_IN_POD"
"""chaosk8s uses the pod's ServiceAccount only when this is ``true``; the ``in-cluster`` context requires it."""
CHAOSK8S_CONTEXT_SECRET = "KUBERNETES_CONTEXT"
"""chaosk8s reads the context from its secrets before the environment: the driver pins it to the checked one."""
KILL_MODE_KEY, KILL_MODE_ENV = "kubernetes_kill_mode", "GAMEDAY_K8S_KILL_MODE"
KILL_MODES = ("restart", "delete")
ENDPOINTS_KEY = "kubernetes_endpoints"
NODE_HOST_KEY, NODE_HOST_ENV = "kubernetes_node_host", "GAMEDAY_K8S_NODE_HOST"
REAPER_IMAGE_KEY = "kubernetes_reaper_image"
DEFAULT_STACK_IMAGE = "gameday-stack:dev"
"""The image `make kind-up` builds and loads into kind; the reaper Job uses it too, so nothing is pulled."""

@dataclass(frozen=True)
class Scope:
    """Where a game day may act: the one reading of the blast-radius keys and variables, shared by the driver's
    guard and the gate's check before it starts anything (chaoslib_ext.gameday.safety)."""
    context: str | None
    """As configured (``kube_context`` / ``$GAMEDAY_KUBE_CONTEXT``); None: the kubeconfig's current context."""
    namespace: str
    allowed_contexts: tuple[str, ...]
    allowed_namespaces: tuple[str, ...]


def scope_of(configuration: Mapping[str, Any] | None, env: Mapping[str, str] | None = None) -> Scope:
    """Configuration first, then the environment; the allow-lists from the environment only."""
    c, env = configuration or {}, os.environ if env is None else env
    return Scope(
        context=str(c.get(CONTEXT_KEY) or env.get(CONTEXT_ENV) or "") or None,
        namespace=str(c.get(NAMESPACE_KEY) or env.get(NAMESPACE_ENV) or STACK_NAMESPACE),
        allowed_contexts=allow_list(env.get(ALLOWED_CONTEXTS_ENV)) or DEFAULT_ALLOWED_CONTEXTS,
        allowed_namespaces=allow_list(env.get(ALLOWED_NAMESPACES_ENV)) or (STACK_NAMESPACE,),
    )


def check_scope(context: str, scope: Scope, env: Mapping[str, str] | None = None) -> str:
    """``context`` (the one resolved from the kubeconfig, or ``in-cluster``) if the scope allows it;
    TargetMisconfigured naming what was found and how to allow it otherwise."""
    env = os.environ if env is None else env
    if not any(fnmatch.fnmatchcase(context, pattern) for pattern in scope.allowed_contexts):
        raise TargetMisconfigured(
            f"refusing to inject faults into kube context {context!r}: it does not match the allowed contexts "
            f"{', '.join(scope.allowed_contexts)}. If this cluster is meant for chaos, allow it with "
            f"`export {ALLOWED_CONTEXTS_ENV}={context}` (comma-separated shell patterns)"
        )
    if scope.namespace not in scope.allowed_namespaces:
        raise TargetMisconfigured(
            f"refusing to inject faults into namespace {scope.namespace!r} of context {context!r}: only the "
            f"stack's namespace ({', '.join(scope.allowed_namespaces)}) is allowed. Allow another with "
            f"`export {ALLOWED_NAMESPACES_ENV}={scope.namespace}`"
        )
    if context == IN_CLUSTER and env.get(IN_POD_ENV) != "true":
        raise TargetMisconfigured(
            f"kube context {IN_CLUSTER!r} needs {IN_POD_ENV}=true in the environment, where chaosk8s looks for it"
        )
    return context


def kubeconfig_path() -> str:
    """The kubeconfig chaosk8s reads (``$KUBECONFIG`` or ``~/.kube/config``): the guard checks that same file."""
    from chaosk8s import get_config_path
    from kubernetes.config import kube_config

    checked = get_config_path()
    # chaosk8s checks $KUBECONFIG now but loads the default the kubernetes package read when it was imported.
    loaded = os.path.expanduser(kube_config.KUBE_CONFIG_DEFAULT_LOCATION)
    if loaded != checked:
        raise TargetMisconfigured(
            f"KUBECONFIG changed after start ({loaded} then {checked}): chaosk8s would act through a file the guard "
            "did not check; set KUBECONFIG before starting the run"
        )
    return checked


@dataclass(frozen=True)
class KubernetesSettings:
    kubeconfig: str
    context: str | None
    """None: the kubeconfig's current context."""
    allowed_contexts: tuple[str, ...] = DEFAULT_ALLOWED_CONTEXTS
    namespace: str = STACK_NAMESPACE
    allowed_namespaces: tuple[str, ...] = (STACK_NAMESPACE,)
    kill_mode: str = "restart"
    """restart: kill the process in its container (a restart the budget counts); delete: delete the pod."""
    node_host: str = "127.0.0.1"
    """Where the kind node's NodePorts are published (extraPortMappings listen on 127.0.0.1)."""
    endpoint_overrides: Mapping[str, str] = field(default_factory=dict)
    reaper_image: str = DEFAULT_STACK_IMAGE

    @property
    def scope(self) -> Scope:
        return Scope(self.context, self.namespace, self.allowed_contexts, self.allowed_namespaces)

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, Any] | None) -> "KubernetesSettings":
        c, env = configuration or {}, os.environ
        kill_mode = str(c.get(KILL_MODE_KEY) or os.environ.get(KILL_MODE_ENV) or "restart")
        if kill_mode not in KILL_MODES:
            raise TargetMisconfigured(f"{KILL_MODE_KEY} {kill_mode!r} is not one of {', '.join(KILL_MODES)}")
        overrides = c.get(ENDPOINTS_KEY) or {}
        if not isinstance(overrides, Mapping):
            raise TargetMisconfigured(f"{ENDPOINTS_KEY} must be a mapping of service name to URL, got {overrides!r}")
        scope = scope_of(c, env)
        return cls(
            kubeconfig="" if scope.context == IN_CLUSTER else kubeconfig_path(),
            context=scope.context,
            allowed_contexts=scope.allowed_contexts,
            namespace=scope.namespace,
            allowed_namespaces=scope.allowed_namespaces,
            kill_mode=kill_mode,
            node_host=str(c.get(NODE_HOST_KEY) or os.environ.get(NODE_HOST_ENV) or "127.0.0.1"),
            endpoint_overrides={str(k): str(v) for k, v in overrides.items()},
            reaper_image=str(c.get(REAPER_IMAGE_KEY) or DEFAULT_STACK_IMAGE),
        )


def check_blast_radius(settings: KubernetesSettings) -> str:
    """The context the driver may act in, or TargetMisconfigured naming what was found and how to allow it.

    Reads only the kubeconfig file (or, in a pod, the environment): no request reaches any cluster before this
    passes."""
    context = settings.context if settings.context == IN_CLUSTER else _kubeconfig_context(settings)
    return check_scope(context, settings.scope)


def _kubeconfig_context(settings: KubernetesSettings) -> str:
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import list_kube_config_contexts

    if os.pathsep in settings.kubeconfig:
        raise TargetMisconfigured(
            f"KUBECONFIG lists several files ({settings.kubeconfig}); point it at the one file of the stack's cluster"
        )
    if not os.path.isfile(settings.kubeconfig):
        raise TargetMisconfigured(
            f"no kubeconfig at {settings.kubeconfig}: create the kind cluster with `make kind-up`, or set KUBECONFIG"
        )
    try:
        contexts, current = list_kube_config_contexts(config_file=settings.kubeconfig)
    except (ConfigException, OSError, ValueError) as exc:
        raise TargetMisconfigured(f"cannot read the kubeconfig {settings.kubeconfig}: {exc}") from exc
    context = settings.context or (current or {}).get("name")
    if not context:
        raise TargetMisconfigured(
            f"the kubeconfig {settings.kubeconfig} has no current context; set {CONTEXT_KEY} or ${CONTEXT_ENV}")
    if context not in {c.get("name") for c in contexts}:
        raise TargetMisconfigured(f"kube context {context!r} is not in {settings.kubeconfig}")
    return str(context)
