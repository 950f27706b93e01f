import json

import pytest

from chaoslib_ext.cli import main


def test_help_teaches_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "3  BASELINE_NOT_MET" in out
    assert "chaos run experiments/processor-pod-kill.yaml" in out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["launch"])
    assert exited.value.code == 2
    assert "invalid choice: 'launch'" in capsys.readouterr().err


def test_status_without_a_stack_says_so(tmp_path, capsys):
    assert main(["stack", "status", "--state-dir", str(tmp_path)]) == 1
    assert f"no local stack is running from {tmp_path}" in capsys.readouterr().out


def test_verdict_exit_code_follows_the_journal(tmp_path, capsys):
    journal = tmp_path / "journal.json"
    journal.write_text(json.dumps({
        "experiment": {"title": "planted"}, "status": "completed", "deviated": True,
        "steady_states": {
            "before": {"steady_state_met": True, "probes": []},
            "after": {"steady_state_met": False, "probes": [{
                "activity": {"name": "lost", "tolerance": 0}, "status": "succeeded", "output": 4,
                "tolerance_met": False}]},
        },
        "run": [], "rollbacks": [],
    }))
    assert main(["verdict", str(journal)]) == 1
    out = capsys.readouterr().out
    assert "after: lost = 4, tolerance 0" in out
    assert "verdict: DEVIATED (exit 1)" in out
    assert main(["verdict", str(tmp_path / "missing.json")]) == 7


def test_slo_generate_check_reports_the_committed_rules_in_sync(capsys):
    assert main(["slo", "generate", "--check"]) == 0
    assert "generated files match" in capsys.readouterr().out


def test_slo_check_names_an_unreachable_stack(capsys):
    assert main(["slo", "check", "--control-url", "http://127.0.0.1:9"]) == 5
    assert "control API at http://127.0.0.1:9 did not answer" in capsys.readouterr().err


def test_stack_up_starts_empty_metric_stores_unless_told_to_keep_them(tmp_path, monkeypatch, capsys):
    import chaos_dr_stack.local.api as api

    asked = []
    monkeypatch.setattr(api, "start_stack", lambda *a, **kw: asked.append(kw) or {"control": "c"})
    assert main(["stack", "up", "--state-dir", str(tmp_path)]) == 0
    assert main(["stack", "up", "--state-dir", str(tmp_path), "--keep-metrics", "--kafka-brokers", "1"]) == 0
    assert [kw["keep_metrics"] for kw in asked] == [False, True]
    # A three-node cluster unless asked otherwise: the broker faults need one.
    assert [kw["runner_args"] for kw in asked] == [("--kafka-brokers", "3"), ("--kafka-brokers", "1")]
