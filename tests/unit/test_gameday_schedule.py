"""`gameday schedule`: cron validation, the CronJob and its namespace-bound RBAC, the crontab line."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaoslib_ext.cli import main
from chaoslib_ext.errors import TargetMisconfigured
from chaoslib_ext.gameday.safety import BlastRadiusRefused
from chaoslib_ext.gameday.schedule import WORKDIR, CronError, pod_environment, validate_cron
from chaoslib_ext.gameday.suite import load_suite
from chaoslib_ext.targets.kubernetes.access import role_rules

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("expression", ["*/5 * * * *", "0 3 * * MON-FRI", "0 0 1,15 * *", "30 2 * JAN-MAR 0,7",
                                        "@daily", "0-30/10 8-18 * * 1-5"])
def test_good_cron_expressions_pass(expression):
    assert validate_cron(expression) == expression


@pytest.mark.parametrize("expression, message", [
    ("0 24 * * *", "hour: 24 is outside 0-23"),
    ("* * *", "expected 5 fields"),
    ("*/0 * * * *", "minute: step '0' must be a positive number"),
    ("0 0 0 * *", "day of month: 0 is outside 1-31"),
    ("0 0 * FOO *", "month: 'FOO' is not a number or a name"),
    ("0 0 * * 8", "day of week: 8 is outside 0-7"),
    ("10-5 * * * *", "minute: range '10-5' runs backwards"),
    ("@reboot", "unknown macro '@reboot'"),
])
def test_bad_cron_expressions_name_the_field(expression, message):
    with pytest.raises(CronError, match=message.replace("*", r"\*")):
        validate_cron(expression)


def _schedule(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["schedule", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_cronjob_and_its_rbac_stay_in_the_namespace(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, _ = _schedule(capsys, "experiments/suites/gate.yaml", "--cron", "*/30 * * * *")
    assert code == 0
    documents = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in documents] == ["ServiceAccount", "Role", "RoleBinding", "CronJob"]
    assert {d["metadata"]["namespace"] for d in documents} == {"app"}
    assert {d["metadata"]["name"] for d in documents} == {"gameday-gate"}
    role, binding, cronjob = documents[1], documents[2], documents[3]
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in role["rules"])
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gameday-gate"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gameday-gate", "namespace": "app"}]
    spec = cronjob["spec"]
    assert spec["schedule"] == "*/30 * * * *" and spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "gameday-gate" and pod["restartPolicy"] == "Never"
    command = pod["containers"][0]["command"][-1]
    assert command.startswith("gameday gate experiments/suites/gate.yaml --target kubernetes --var namespace=app")
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env == {"GAMEDAY_TARGET": "kubernetes", "GAMEDAY_KUBE_CONTEXT": "in-cluster",
                   "GAMEDAY_ALLOWED_CONTEXTS": "in-cluster", "CHAOSTOOLKIT_IN_POD": "true",
                   "GAMEDAY_NAMESPACE": "app", "GAMEDAY_ALLOWED_NAMESPACES": "app", "HOME": "/var/lib/gameday"}
    assert pod["containers"][0]["volumeMounts"] == [{"name": "runs", "mountPath": "/var/lib/gameday"}]
    assert role["rules"] == role_rules(), "the Role is the driver's access table"


def test_the_generated_objects_validate_against_the_kubernetes_version_kind_runs(capsys, monkeypatch):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    monkeypatch.chdir(REPO)
    code, out, _ = _schedule(capsys, "experiments/suites/gameday.yaml", "--cron", "0 3 * * MON-FRI")
    assert code == 0
    kind = yaml.safe_load((REPO / "deploy" / "kind" / "cluster.yaml").read_text())
    version = kind["nodes"][0]["image"].split(":v", 1)[1].split("@", 1)[0]
    documents = list(yaml.safe_load_all(out))
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)
    documents[-1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"][0]["valu"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError, match="valu"):
        kubernetes_validate.validate(documents[-1], version, strict=True)


def test_the_pods_environment_passes_the_gates_check_and_the_drivers_guard(monkeypatch):
    from chaoslib_ext.gameday.safety import check_blast_radius
    from chaoslib_ext.targets.kubernetes.settings import KubernetesSettings
    from chaoslib_ext.targets.kubernetes.settings import check_blast_radius as driver_guard

    env = pod_environment("app")
    assert check_blast_radius({}, env=env).scope == "in-cluster/app"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert driver_guard(KubernetesSettings.from_configuration({})) == "in-cluster"
    # Without CHAOSTOOLKIT_IN_POD chaosk8s would look for a kubeconfig: both refuse.
    monkeypatch.delenv("CHAOSTOOLKIT_IN_POD")
    with pytest.raises(TargetMisconfigured, match="CHAOSTOOLKIT_IN_POD=true"):
        driver_guard(KubernetesSettings.from_configuration({}))
    with pytest.raises(BlastRadiusRefused, match="CHAOSTOOLKIT_IN_POD=true"):
        check_blast_radius({}, env={k: v for k, v in env.items() if k != "CHAOSTOOLKIT_IN_POD"})


def test_the_image_holds_what_the_cronjob_runs():
    """The CronJob runs in WORKDIR with paths relative to the repository: the image must copy them there."""
    dockerfile = (REPO / "Dockerfile").read_text().splitlines()
    [workdir] = [line.split()[1] for line in dockerfile if line.startswith("WORKDIR ")]
    assert workdir == WORKDIR
    copies = {tuple(line.split()[1:]) for line in dockerfile if line.startswith("COPY ")}
    copied = {source for *sources, dest in copies for source in sources
              if dest in ("./", "./" + source, source, f"{WORKDIR}/{source}")}
    suite = load_suite(REPO / "experiments" / "suites" / "gameday.yaml")
    needed = ["experiments/suites/gameday.yaml", "deploy/monitoring/slos.yaml", "pyproject.toml",
              *(str(entry.path.resolve().relative_to(REPO)) for entry in suite.experiments)]
    for path in needed:
        assert (REPO / path).exists(), path
        assert any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied), \
            f"{path} is not in the image at {WORKDIR}/{path}"
    assert any("pip install -e ./stack -e '.[all]'" in line for line in dockerfile), \
        "the `gameday` command, the stack's services and the report's plots come from the install, every extra"


def test_the_sample_cronjob_is_what_the_command_prints(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, _ = _schedule(capsys, "experiments/suites/gameday.yaml", "--cron", "0 3 * * MON-FRI")
    assert code == 0
    assert (REPO / "deploy" / "k8s" / "gameday-cronjob.yaml").read_text() == out, \
        "regenerate deploy/k8s/gameday-cronjob.yaml with the command in its first line"


def test_the_local_target_gets_a_crontab_line(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, _ = _schedule(capsys, "experiments/suites/gate.yaml", "--cron", "@hourly", "--target", "local")
    assert code == 0
    line = out.strip()
    assert "\n" not in line and line.startswith(f"@hourly cd {REPO} && mkdir -p .gameday && flock -n")
    assert f"{REPO}/.venv/bin/gameday gate {REPO}/experiments/suites/gate.yaml --target local --quiet" in line
    assert "\\%Y\\%m\\%d" in line, "an unescaped % ends a crontab command"


def test_a_bad_cron_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, err = _schedule(capsys, "experiments/suites/gate.yaml", "--cron", "61 * * * *")
    assert code == 2 and out == ""
    assert "--cron '61 * * * *': minute: 61 is outside 0-59" in err


def test_a_namespace_outside_the_allow_list_is_refused(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("GAMEDAY_ALLOWED_NAMESPACES", raising=False)
    code, out, err = _schedule(capsys, "experiments/suites/gate.yaml", "--cron", "@daily", "--namespace", "default")
    assert code == 5 and out == ""
    assert "refusing to inject faults into namespace 'default'" in err


def test_a_missing_suite_is_a_usage_error(capsys, tmp_path):
    code, _, err = _schedule(capsys, str(tmp_path / "nope.yaml"), "--cron", "@daily")
    assert code == 2 and "cannot read suite" in err
