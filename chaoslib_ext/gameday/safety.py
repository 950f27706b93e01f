"""Blast radius: refuse to run against a target outside the allow-list, before any side effect.

The check reads configuration values only (``--var``, the environment, the kubeconfig file); it sends nothing
to the target. It is the contract every target driver relies on:

- ``local``: the local target's own guard (``chaoslib_ext.targets.local.check_control_url``, which every local
  target runs when it is made, so ``chaos run`` is guarded too): the control API URL (``local_control_url`` /
  ``$GAMEDAY_CONTROL_URL`` / the default) must be on a loopback address, or its host listed in
  ``$GAMEDAY_ALLOWED_HOSTS`` (comma-separated). A game day on this machine cannot reach into another one by a
  typo in a URL.
- ``kubernetes``: the driver's own guard (``chaoslib_ext.targets.kubernetes.settings``: ``scope_of`` reads the
  keys and variables, ``check_scope`` the allow-lists), so the gate and ``chaos run`` cannot disagree. The
  context (``kube_context`` / ``$GAMEDAY_KUBE_CONTEXT`` / the kubeconfig's current context) must match one of
  ``$GAMEDAY_ALLOWED_CONTEXTS`` (shell patterns, default ``kind-*``), the namespace (``namespace`` /
  ``$GAMEDAY_NAMESPACE``, default ``app``) be one of ``$GAMEDAY_ALLOWED_NAMESPACES`` (default ``app``), and the
  ``in-cluster`` context needs ``CHAOSTOOLKIT_IN_POD=true``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TARGET_KEYS = ("target", "local_control_url", "kube_context", "namespace")


class BlastRadiusRefused(ValueError):
    """The target is outside the allow-list. The message says what was checked and how to allow it."""


@dataclass(frozen=True)
class Allowed:
    target: str
    scope: str
    """What was checked: the control URL, or ``context/namespace``."""


def check_local(configuration: Mapping[str, Any], env: Mapping[str, str]) -> Allowed:
    """The local target's own guard (``chaoslib_ext.targets.local.control_url_from``), run before anything starts."""
    from chaoslib_ext.errors import TargetMisconfigured
    from chaoslib_ext.targets.local import control_url_from

    try:
        return Allowed("local", control_url_from(configuration, env))
    except TargetMisconfigured as exc:
        raise BlastRadiusRefused(str(exc)) from exc


def _current_context(env: Mapping[str, str]) -> str | None:
    try:
        from kubernetes import config as kube_config

        _contexts, active = kube_config.list_kube_config_contexts(config_file=env.get("KUBECONFIG") or None)
    except Exception:  # noqa: BLE001 - no kubeconfig, or an unreadable one: there is no context to allow
        return None
    return (active or {}).get("name")


def check_kubernetes(configuration: Mapping[str, Any], env: Mapping[str, str]) -> Allowed:
    """The driver's own guard (the same keys, variables, allow-lists and messages), run before anything starts.
    Unlike the driver it does not require the context to exist in the kubeconfig: ``chaos run`` checks that."""
    from chaoslib_ext.errors import TargetMisconfigured
    from chaoslib_ext.targets.kubernetes.settings import CONTEXT_ENV, CONTEXT_KEY, check_scope, scope_of

    scope = scope_of(configuration, env)
    context = scope.context or _current_context(env)
    if not context:
        raise BlastRadiusRefused(
            f"refusing the kubernetes target: no kube context is set (--var {CONTEXT_KEY}=..., ${CONTEXT_ENV}, "
            "or a current context in the kubeconfig)"
        )
    try:
        check_scope(context, scope, env)
    except TargetMisconfigured as exc:
        raise BlastRadiusRefused(str(exc)) from exc
    return Allowed("kubernetes", f"{context}/{scope.namespace}")


def declared_configuration(experiment: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The target keys an experiment file declares, resolved as Chaos Toolkit would (a literal, or an ``env``
    entry's variable or default), so a URL hard-coded in an experiment is checked too. Unreadable files give {}:
    ``chaos run`` reports those itself."""
    env = os.environ if env is None else env
    try:
        document = yaml.safe_load(Path(experiment).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    declared = document.get("configuration") if isinstance(document, dict) else None
    resolved: dict[str, Any] = {}
    for key in TARGET_KEYS:
        value = declared.get(key) if isinstance(declared, dict) else None
        if isinstance(value, dict) and value.get("type") == "env":
            value = env.get(str(value.get("key")), value.get("default"))
        if value is not None and not isinstance(value, dict):
            resolved[key] = value
    return resolved


def check_blast_radius(configuration: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Allowed:
    """Raise BlastRadiusRefused unless the configured target is allowed. Sends nothing anywhere."""
    env = os.environ if env is None else env
    target = str(configuration.get("target") or env.get("GAMEDAY_TARGET") or "local").strip().lower()
    if target == "local":
        return check_local(configuration, env)
    if target == "kubernetes":
        return check_kubernetes(configuration, env)
    raise BlastRadiusRefused(f"unknown target {target!r}: expected local or kubernetes")
