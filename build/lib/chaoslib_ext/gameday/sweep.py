"""``gameday sweep``: heal every fault whose experiment is gone.

A fault belongs to a live experiment while a ``chaos run`` process is running against the same target; once none
is, every fault still in force is an orphan (its run was SIGKILLed before its rollbacks, or crashed), and the
sweep heals it instead of waiting for its TTL. Live runs are found in ``/proc``: ``chaos ... run`` processes whose
``GAMEDAY_CONTROL_URL`` (environment) or ``--var local_control_url=`` (command line) names this control API, the
default URL counting for runs that name none. ``--force`` heals even while runs are live.

On Kubernetes the runs may be anywhere (a laptop, CI, the scheduled CronJob), so the driver's own ``sweep``
decides instead: every chaos-made object past its ``gameday/expires-at`` (or without one) is an orphan; unexpired
ones are kept, since a live experiment may own them and their reaper ends them on time. ``--force`` removes them
too, and heals the HTTP error and provider faults.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC = Path("/proc")


@dataclass
class SweepResult:
    target: str
    live_runs: list[int] = field(default_factory=list)
    """PIDs of ``chaos run`` processes still running against the target: their faults are not orphans."""
    healed: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    """Faults left in force because their experiment is still running."""
    kept: list[dict] = field(default_factory=list)
    """Kubernetes: unexpired chaos-made objects, which a live experiment may own (``--force`` removes them)."""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def live_chaos_runs(control_url: str, default_url: str, proc: Path = PROC) -> list[int]:
    """PIDs of ``chaos run`` processes aimed at ``control_url``."""
    found = []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = [a.decode(errors="replace") for a in _read(entry / "cmdline").split(b"\0") if a]
        if "run" not in argv or not any(Path(a).name == "chaos" for a in argv[:2]):
            continue
        environ = dict(
            item.decode(errors="replace").partition("=")[::2] for item in _read(entry / "environ").split(b"\0") if item
        )
        named = [a.split("=", 1)[1] for a in argv if a.startswith("local_control_url=")]
        url = (named[-1] if named else environ.get("GAMEDAY_CONTROL_URL")) or default_url
        if url.rstrip("/") == control_url.rstrip("/"):
            found.append(int(entry.name))
    return sorted(found)


def sweep(configuration: Mapping[str, Any], force: bool = False) -> SweepResult:
    """Heal the target's orphaned faults. Raises GamedayError subclasses when the target cannot be reached."""
    from chaoslib_ext.targets import from_configuration
    from chaoslib_ext.targets.base import sweep_faults
    from chaoslib_ext.targets.local import DEFAULT_CONTROL_URL, LocalTarget

    with from_configuration(configuration) as target:
        result = SweepResult(target=getattr(target, "control_url", None) or _kube_scope(target) or target.kind)
        own_sweep = getattr(target, "sweep", None)
        if callable(own_sweep):  # the driver tells orphans from live experiments' faults itself
            outcome = own_sweep(force=force)
            result.healed, result.failed = list(outcome["healed"]), list(outcome["failed"])
            result.kept = list(outcome.get("kept", []))
            return result
        if isinstance(target, LocalTarget):
            result.live_runs = live_chaos_runs(target.control_url, DEFAULT_CONTROL_URL)
        if result.live_runs and not force:
            result.skipped = target.active_faults()
            return result
        outcome = sweep_faults(target)
        result.healed, result.failed = list(outcome["healed"]), list(outcome["failed"])
        return result


def _kube_scope(target: Any) -> str | None:
    context, namespace = getattr(target, "context", None), getattr(target, "namespace", None)
    return f"kube context {context}, namespace {namespace}" if context and namespace else None


def describe_fault(fault: Mapping[str, Any]) -> str:
    if "object" in fault:  # a chaos-made Kubernetes object
        return f"{fault.get('kind')}: {fault['object']} {fault.get('name')}" + (
            f" ({fault['reason']})" if fault.get("reason") else "")
    details = {k: v for k, v in fault.items() if k not in ("kind", "applied_at", "expires_at", "expires_in")}
    expires = fault.get("expires_in")
    return (f"{fault.get('kind')} {', '.join(f'{k}={v}' for k, v in sorted(details.items()))}"
            + (f" (would have expired in {expires:.1f} s)" if isinstance(expires, (int, float)) else ""))


def report_lines(result: SweepResult) -> list[str]:
    """What ``gameday sweep`` prints: every fault it healed, failed to heal, or left, then a summary."""
    import time

    lines = []
    if result.skipped:
        lines.append(f"{len(result.live_runs)} experiment(s) still running against {result.target} "
                     f"(chaos run pid {', '.join(map(str, result.live_runs))}): their faults are not orphans, left:")
        lines += [f"  left    {describe_fault(fault)}" for fault in result.skipped]
    lines += [f"  healed  {describe_fault(fault)}" for fault in result.healed]
    lines += [f"  FAILED  {failure['kind']}: {failure['error']}" for failure in result.failed]
    for kept in result.kept:
        expires = kept.get("expires_at")
        left = f"expires in {expires - time.time():.0f} s, its reaper ends it" if isinstance(expires, (int, float)) \
            else "no expiry"
        lines.append(f"  kept    {describe_fault(kept)} ({left}; --force removes it now)")
    if not (result.healed or result.failed or result.skipped or result.kept):
        lines.append(f"nothing to heal: no fault is in force on {result.target}")
    else:
        lines.append(f"swept {result.target}: {len(result.healed)} healed, {len(result.failed)} failed, "
                     f"{len(result.skipped)} left to live experiments"
                     + (f", {len(result.kept)} kept until their expiry" if result.kept else ""))
    return lines
