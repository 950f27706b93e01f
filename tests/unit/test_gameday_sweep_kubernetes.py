"""`gameday sweep --target kubernetes`: the driver's own sweep, through the CLI, against the fake API server.

Unexpired chaos-made objects are kept (a live experiment may own them; their reaper ends them), expired ones are
removed and listed; `--force` removes everything chaos-made and heals the HTTP error and provider faults too."""
from __future__ import annotations

import json
import re
import time

import pytest
from test_kubernetes_target import (
    JOBS, POLICIES, SECRETS, TOKEN, chaos_object, fault_token_secret, kube,
)

from chaoslib_ext.cli import main

__all__ = ["kube"]  # the fixture, shared with the driver's tests


def sweep(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["sweep", "--target", "kubernetes", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def seed_leftovers(kube) -> float:
    now = time.time()
    kube.seed(POLICIES, chaos_object("NetworkPolicy", "chaos-partition-old", now - 120))
    kube.seed(JOBS, chaos_object("Job", "chaos-partition-old", now - 120))
    kube.seed(POLICIES, chaos_object("NetworkPolicy", "chaos-partition-live", now + 600))
    kube.seed(POLICIES, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "spec": {"podSelector": {}},
                         "metadata": {"name": "default-deny-ingress", "namespace": "app"}})
    return now


def test_the_sweep_removes_expired_objects_and_keeps_live_ones(kube, capsys):
    started = seed_leftovers(kube)
    code, out, err = sweep(capsys)
    assert code == 0, err
    lines = out.splitlines()
    healed = [re.fullmatch(r"  healed  kafka-partition: (\w+) chaos-partition-old \(expired (\d+) s ago\)", line)
              for line in lines if line.startswith("  healed")]
    assert sorted(m[1] for m in healed if m) == ["Job", "NetworkPolicy"], out
    # Seeded 120 s past their expiry; a loaded machine may take a second or two to get here.
    assert all(120 <= int(m[2]) <= 120 + (time.time() - started) + 1 for m in healed), out
    [kept] = [line for line in lines if line.startswith("  kept")]
    left = re.fullmatch(r"  kept    kafka-partition: NetworkPolicy chaos-partition-live \(expires in (\d+) s, its "
                        r"reaper ends it; --force removes it now\)", kept)
    assert left, kept
    assert abs(started + 600 - time.time() - int(left[1])) <= 1.5  # seeded to expire 600 s after `started`
    assert lines[-1] == ("swept kube context kind-gameday, namespace app: 2 healed, 0 failed, 0 left to live "
                         "experiments, 1 kept until their expiry")
    assert sorted(kube.live(POLICIES)) == ["chaos-partition-live", "default-deny-ingress"]
    assert kube.live(JOBS) == {}


def test_a_forced_sweep_removes_everything_chaos_made_and_heals_the_other_faults(kube, capsys):
    providers = pytest.importorskip("chaos_dr_stack.providers.app", reason="the provider simulator comes with issue 5")
    seed_leftovers(kube)
    kube.seed(SECRETS, fault_token_secret())
    kube.kmock.proxy_apps["provider-simulator"] = providers.create_app(TOKEN)
    code, out, err = sweep(capsys, "--force", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert sorted((h["kind"], h.get("name")) for h in result["healed"]) == [
        ("http-errors", None), ("kafka-partition", "chaos-partition-live"), ("kafka-partition", "chaos-partition-old"),
        ("kafka-partition", "chaos-partition-old"), ("provider", None)]
    assert result["failed"] == [] and result["kept"] == []
    assert sorted(kube.live(POLICIES)) == ["default-deny-ingress"]
    assert "DELETE /api/v1/namespaces/app/services/provider-simulator:http/proxy/_faults" in kube.kmock.proxied


def test_what_the_sweep_cannot_heal_is_listed_and_fails_the_exit_code(kube, capsys):
    code, out, _ = sweep(capsys, "--force")
    assert code == 1
    assert "  FAILED  http-errors: TargetMisconfigured: secret 'gameday-fault-token' is missing" in out
    assert "  FAILED  provider: " in out


def test_the_sweep_refuses_a_context_outside_the_allow_list_before_any_request(kube, capsys):
    code, out, err = sweep(capsys, "--var", "kube_context=prod-eu-west")
    assert code == 5 and out == ""
    assert "refusing to inject faults into kube context 'prod-eu-west'" in err
    assert kube.requests() == []
