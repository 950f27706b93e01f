"""`gameday schedule`: cron validation, the CronJob and its namespace-bound RBAC, the crontab line."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaoslib_ext.cli import main
from chaoslib_ext.gameday.schedule import CronError, validate_cron

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
    assert env["GAMEDAY_ALLOWED_NAMESPACES"] == "app"


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
    assert "refusing namespace 'default'" in err


def test_a_missing_suite_is_a_usage_error(capsys, tmp_path):
    code, _, err = _schedule(capsys, str(tmp_path / "nope.yaml"), "--cron", "@daily")
    assert code == 2 and "cannot read suite" in err
