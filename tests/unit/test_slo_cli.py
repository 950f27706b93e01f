"""``python -m chaoslib_ext.slo generate``: exit codes, drift check, all-or-nothing writes."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chaoslib_ext.slo import load, output
from chaoslib_ext.slo.__main__ import EXIT_DRIFT, EXIT_INVALID, EXIT_OK, main

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "deploy" / "monitoring" / "slos.yaml"
HAS_PROMTOOL = shutil.which("promtool") is not None


@pytest.fixture
def out(tmp_path):
    """A generated rules and tests tree in tmp_path; returns the CLI arguments that address it."""
    args = ["--out", str(tmp_path / "rules"), "--tests-out", str(tmp_path / "rules-tests")]
    assert main(["generate", *args]) == EXIT_OK
    return args


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chaoslib_ext.slo", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_the_committed_rules_match_the_spec():
    done = run("generate", "--check")
    assert done.returncode == EXIT_OK, done.stderr
    assert "generated files match" in done.stdout


def test_check_reports_changed_missing_and_stale_files(tmp_path, out, capsys):
    rules = tmp_path / "rules"
    edited = rules / "slo-processor-availability.yml"
    edited.write_text(edited.read_text().replace("> 0.072", "> 0.08"))
    (rules / "drill" / "slo-processor-restarts.yml").unlink()
    shutil.copy(rules / "slo-processor-latency.yml", rules / "slo-retired.yml")
    (tmp_path / "rules-tests" / "hand-written.yml").write_text("rule_files: []\n")
    capsys.readouterr()

    assert main(["generate", *out, "--check"]) == EXIT_DRIFT
    err = capsys.readouterr().err
    assert "3 generated files drift" in err
    assert f"changed: {edited} (+1 -1 lines)" in err
    assert f"missing: {rules / 'drill' / 'slo-processor-restarts.yml'}" in err
    assert f"stale: {rules / 'slo-retired.yml'}" in err
    assert "-    expr: slo:sli_error:ratio_rate5m{slo=\"processor-availability\"} > 0.08" in err
    assert "+    expr: slo:sli_error:ratio_rate5m{slo=\"processor-availability\"} > 0.072" in err

    # Regenerating repairs all three and leaves the hand-written test alone.
    assert main(["generate", *out]) == EXIT_OK
    assert main(["generate", *out, "--check"]) == EXIT_OK
    assert not (rules / "slo-retired.yml").exists()
    assert (tmp_path / "rules-tests" / "hand-written.yml").read_text() == "rule_files: []\n"


def test_a_spec_change_is_drift(tmp_path, out, capsys):
    document = yaml.safe_load(SPEC.read_text())
    document["slos"][0]["objective"] = 99.9
    spec = tmp_path / "slos.yaml"
    spec.write_text(yaml.safe_dump(document))
    assert main(["generate", "--spec", str(spec), *out, "--check"]) == EXIT_DRIFT
    assert "slo-processor-availability.yml" in capsys.readouterr().err


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_an_invalid_spec_exits_2_naming_the_field_and_writes_nothing(tmp_path, out):
    before = snapshot(tmp_path)
    document = yaml.safe_load(SPEC.read_text())
    document["slos"][2]["objective"] = 100.5
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(document))
    done = run("generate", "--spec", str(spec), *out)
    assert done.returncode == EXIT_INVALID
    assert "slos[2].objective: 100.5 is not within (0, 100)" in done.stderr
    spec.unlink()
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(not HAS_PROMTOOL, reason="promtool not found: PromQL validation needs Debian's prometheus package")
def test_promql_that_prometheus_rejects_is_an_invalid_spec(tmp_path, out):
    before = snapshot(tmp_path)
    document = yaml.safe_load(SPEC.read_text())
    document["slos"][3]["sli"]["events"]["total_query"] = "sum(rate(app_end_to_end_seconds_count[{{.window}}])"
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(document))
    done = run("generate", "--spec", str(spec), *out)
    assert done.returncode == EXIT_INVALID, done.stderr
    assert "slos[3].sli: promtool rejects rule 3 of pipeline-end-to-end: \"slo:sli_error:ratio_rate5m\": " \
           "could not parse expression" in done.stderr
    spec.unlink()
    assert snapshot(tmp_path) == before


def test_writes_are_all_or_nothing(tmp_path, out, monkeypatch):
    layout = output.Layout(tmp_path / "rules", tmp_path / "rules-tests", "slos.yaml")
    files = output.render(load(SPEC), layout)
    changed = {path: text + "# changed\n" for path, text in files.items()}
    before = snapshot(tmp_path)
    real_fdopen, opened = os.fdopen, []

    def failing_fdopen(fd, *args, **kwargs):
        opened.append(fd)
        if len(opened) == 7:
            os.close(fd)
            raise OSError(28, "No space left on device")
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(output.os, "fdopen", failing_fdopen)
    with pytest.raises(OSError, match="No space left"):
        output.write_all(changed, layout)
    assert snapshot(tmp_path) == before  # no target changed, no temporary file left behind


def test_check_without_files_reports_everything_missing(tmp_path, capsys):
    args = ["--out", str(tmp_path / "r"), "--tests-out", str(tmp_path / "t"), "--check"]
    assert main(["generate", *args]) == EXIT_DRIFT
    assert "missing:" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_missing_promtool_only_warns(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROMTOOL", str(tmp_path / "no-promtool"))
    args = ["--out", str(tmp_path / "r"), "--tests-out", str(tmp_path / "t")]
    assert main(["generate", *args]) == EXIT_OK
    assert "PromQL was not validated" in capsys.readouterr().err
