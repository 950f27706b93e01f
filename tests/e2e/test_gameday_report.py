"""`gameday report` on run directories written by the real `chaos run` (planted experiments, no stack needed)."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "experiments"
GAMEDAY = Path(sys.executable).with_name("gameday")


def gate(tmp_path: Path, *experiments: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    suite = tmp_path / "suite.yaml"
    suite.write_text("version: gameday/v1\nname: planted\nslo_check: false\nexperiments:\n"
                     + "".join(f"  - {FIXTURES / e}\n" for e in experiments))
    return subprocess.run([str(GAMEDAY), "gate", str(suite), "--run-dir", str(tmp_path / "runs"), *extra],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp_path = tmp_path_factory.mktemp("report")
    result = gate(tmp_path, "pass.yaml", "deviated.yaml", "activity-failed.yaml")
    return tmp_path / "runs", result


def test_the_gate_writes_the_report_into_the_run_directory(planted_run):
    runs, result = planted_run
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"report: {runs / 'report.html'}, {runs / 'junit.xml'}, {runs / 'summary.md'}" in result.stdout


def test_junit_has_one_case_per_experiment_and_per_probe_and_fails_the_bad_ones(planted_run):
    runs, _ = planted_run
    journals = {d.name: json.loads((d / "journal.json").read_text()) for d in sorted(runs.iterdir()) if d.is_dir()}
    root = ET.parse(runs / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert sorted(suites) == sorted(journals)
    for name, journal in journals.items():
        probes = sum(len((journal["steady_states"].get(phase) or {}).get("probes", [])) for phase in ("before", "after"))
        cases = suites[name].findall("testcase")
        assert len(cases) == 1 + probes, name
        assert suites[name].get("tests") == str(1 + probes)
    failed = {s.get("name"): [c.find("failure").get("type") for c in s.findall("testcase") if c.find("failure") is not None]
              for s in suites.values()}
    assert failed["01-pass"] == []
    assert failed["02-deviated"] == ["DEVIATED", "tolerance"]
    assert failed["03-activity-failed"] == ["ACTIVITY_FAILED"]
    assert root.get("failures") == "3"
    deviated = [c for c in suites["02-deviated"].findall("testcase") if c.find("failure") is not None][0]
    assert "after: flag-absent" in deviated.find("failure").text


def test_the_html_report_is_self_contained_and_shows_each_experiment(planted_run):
    runs, _ = planted_run
    html = (runs / "report.html").read_text()
    assert "<style>" in html and "<link" not in html and "<script" not in html and "http://" not in html
    assert "Game day runs: <span class=\"bad\">DEVIATED</span> (exit 1)" in html
    for name in ("01-pass", "02-deviated", "03-activity-failed"):
        assert f'<h2 id="{name}">' in html
    # The timeline holds every probe and action run from the journal.
    assert "hypothesis-after.probe" in html and "method.action" in html
    assert "InvalidArgument: path must start with &#x27;/&#x27;" in html


def test_report_prints_the_markdown_summary(planted_run, tmp_path):
    runs, _ = planted_run
    result = subprocess.run([str(GAMEDAY), "report", str(runs), "--out", str(tmp_path), "--markdown"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("## Game day runs: DEVIATED (exit 1)")
    assert "1 of 3 experiment(s) passed." in result.stdout
    assert "| 02-deviated | DEVIATED |" in result.stdout
    assert (tmp_path / "summary.md").read_text() == result.stdout
    exit_code = subprocess.run([str(GAMEDAY), "report", str(runs), "--out", str(tmp_path), "--exit-code"],
                               capture_output=True, text=True, timeout=60)
    assert exit_code.returncode == 1


def test_report_on_a_directory_without_journals_is_a_usage_error(tmp_path):
    result = subprocess.run([str(GAMEDAY), "report", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "holds no journal.json" in result.stderr


def test_no_report_leaves_only_the_journals(tmp_path):
    result = gate(tmp_path, "pass.yaml", extra=("--no-report", "--quiet"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "report:" not in result.stdout
    assert not (tmp_path / "runs" / "report.html").exists()
    assert "[1/1]" not in result.stdout, "--quiet printed progress"
