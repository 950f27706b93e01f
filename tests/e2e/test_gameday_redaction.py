"""Secrets never reach what gameday writes: planted in the environment and in --var, grepped for afterwards."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "experiments"
GAMEDAY = Path(sys.executable).with_name("gameday")
PLANTED = {
    "GAMEDAY_FAULT_TOKEN": "planted-fault-token-4711",
    "SERVICE_PASSWORD": "planted-service-password-0815",
}
PLANTED_VAR = "planted-db-password-1234"


def test_secrets_are_masked_in_journals_logs_and_reports(tmp_path):
    env = dict(os.environ, **PLANTED)
    result = subprocess.run(
        [str(GAMEDAY), "run", str(FIXTURES / "leaks-secrets.yaml"), "--var", f"db_password={PLANTED_VAR}",
         "--run-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted(p for p in (tmp_path / "runs").rglob("*") if p.is_file())
    names = {p.name for p in files}
    assert {"journal.json", "chaostoolkit.log", "chaos-output.txt", "report.html", "junit.xml", "summary.md"} <= names
    journal = (tmp_path / "runs" / "01-leaks-secrets" / "journal.json").read_text()
    # Not vacuous: the outputs were there, masked.
    assert journal.count("***REDACTED***") >= 3, journal
    assert "db=***REDACTED***" in journal
    for secret in [*PLANTED.values(), PLANTED_VAR]:
        leaks = [p.name for p in files if secret in p.read_text(errors="replace")]
        assert leaks == [], f"{secret} leaked into {leaks}"
        assert secret not in result.stdout + result.stderr
    assert "***REDACTED***" in (tmp_path / "runs" / "report.html").read_text()
