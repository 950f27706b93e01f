"""The Kubernetes target: the stack of ``deploy/k8s`` in a kind cluster, or any cluster in an allowed context.

The same experiments as the local target, with Kubernetes doing what the runner does locally:
- **instances** are the pods labelled ``app.kubernetes.io/name=<component>`` in the stack's namespace;
- **kill** restarts the container in place by killing its process through exec (chaosk8s ``exec_in_pods``): the
  kubelet restarts it and counts it in ``restartCount``, which is what SLO-4's restart budget counts. With
  ``kubernetes_kill_mode: delete`` it deletes the pod instead (chaosk8s ``terminate_pods``; for SIGKILL its
  processes are frozen first and the grace period is 0, so the service cannot leave its consumer group, as in a
  crash): the Deployment replaces it with a new pod under a new name, and no restart is counted;
- **partition** is an egress NetworkPolicy (chaosk8s ``create_network_policy``) owned by a reaper Job whose
  ``activeDeadlineSeconds`` is the fault's TTL: when the deadline ends the Job, ``ttlSecondsAfterFinished: 0``
  deletes it and the garbage collector deletes the policy with it, so the fault ends on time even when the
  ``chaos run`` that made it was killed;
- **endpoints** are the NodePorts that deploy/kind/cluster.yaml maps to the host.

Blast-radius guard: before any request, the driver checks that the kube context matches an allow-list (default
``kind-*``) and that the namespace is the stack's. Every object it creates is labelled
``app.kubernetes.io/managed-by=chaos-made`` and annotated ``gameday/expires-at`` (Unix seconds), so ``sweep``
finds leftovers.
"""
from chaoslib_ext.targets.kubernetes.driver import NODE_PORTS, KubernetesTarget, target_from_configuration
from chaoslib_ext.targets.kubernetes.objects import (
    CHAOS_MADE, EXPIRES_AT_ANNOTATION, FAULT_LABEL, MANAGED_BY_LABEL, NAME_LABEL, POD_CIDR, STACK_NAMESPACE,
)
from chaoslib_ext.targets.kubernetes.settings import KubernetesSettings, check_blast_radius

__all__ = [
    "CHAOS_MADE", "EXPIRES_AT_ANNOTATION", "FAULT_LABEL", "MANAGED_BY_LABEL", "NAME_LABEL", "NODE_PORTS", "POD_CIDR",
    "STACK_NAMESPACE", "KubernetesSettings", "KubernetesTarget", "check_blast_radius", "target_from_configuration",
]
