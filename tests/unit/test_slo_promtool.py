"""The committed rules under Prometheus' own engine: ``promtool check rules`` and ``promtool test rules``.

Skipped, with the reason printed by ``-ra``, only when promtool is not installed.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from chaoslib_ext.slo import burn_alerts, drill_copy, load, parse, promtool
from chaoslib_ext.slo.output import Layout, render, write_all

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
SPEC = MONITORING / "slos.yaml"
RULE_FILES = sorted(MONITORING.glob("rules/*.yml")) + sorted(MONITORING.glob("rules/drill/*.yml"))
TEST_FILES = sorted(MONITORING.glob("rules-tests/*.yml")) + sorted(MONITORING.glob("rules-tests/drill/*.yml"))

try:
    PROMTOOL = promtool.find()
except promtool.PromtoolMissing as missing:
    PROMTOOL = None
    pytestmark = pytest.mark.skip(reason=f"{missing}: the rule tests need Prometheus' own engine")


def run_tests(files: list[Path]) -> dict[Path, promtool.Result]:
    """One promtool per file, as many at once as there are cores: each replays hours of samples."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(files, pool.map(lambda f: promtool.test_rules([f], PROMTOOL), files)))


@pytest.fixture(scope="module")
def committed_results() -> dict[Path, promtool.Result]:
    return run_tests(TEST_FILES)


def test_the_committed_rules_pass_promtool_check():
    result = promtool.check_rules(RULE_FILES, PROMTOOL)
    assert result.ok, result.output
    assert len(RULE_FILES) == 26


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: str(p.relative_to(MONITORING / "rules-tests")))
def test_the_committed_rule_tests_pass(committed_results, test_file):
    result = committed_results[test_file]
    assert result.ok, result.output
    assert "SUCCESS" in result.output


def _tested_alerts() -> dict[str, list[str]]:
    """Alert name → names of the test groups that exercise it."""
    tested: dict[str, list[str]] = {}
    for path in TEST_FILES:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for check in group.get("alert_rule_test", []):
                tested.setdefault(check["alertname"], [])
                if group["name"] not in tested[check["alertname"]]:
                    tested[check["alertname"]].append(group["name"])
    return tested


def test_every_required_alert_is_tested_firing_silent_and_resolving():
    catalog = load(SPEC)
    required = [a.name for name in ("processor-availability", "pipeline-throughput", "pipeline-end-to-end",
                                    "llm-fallback-success") for a in burn_alerts(catalog.slo(name))]
    required += ["ProcessorRestartsHigh", "MarketDataStale", "MarketDataStaleCritical"]
    tested = _tested_alerts()
    for alert in required:
        for prefix in ("", "[drill] "):
            groups = [g for g in tested.get(alert, []) if g.startswith("[drill] ") == bool(prefix)]
            assert any("fires" in g and "resolves" in g for g in groups), f"{prefix}{alert}: no fire/resolve test"
            assert any("stays silent" in g for g in groups), f"{prefix}{alert}: no below-threshold test"
    # SLO-2's latency alert has hand-written tests (production profile only).
    assert len(tested["ProcessorLatencyP95High"]) == 3


def test_a_wrong_expectation_fails(tmp_path):
    """The tests can fail: expect the 5m alert one evaluation before the predicted lower bound."""
    source = MONITORING / "rules-tests" / "slo-processor-availability.yml"
    document = yaml.safe_load(source.read_text())
    document["rule_files"] = [str(MONITORING / "rules" / "slo-processor-availability.yml")]
    fires = document["tests"][0]
    assert fires["name"].startswith("processor-availability: ProcessorAvailabilityBurnRateHigh fires")
    silent, firing = fires["alert_rule_test"][:2]
    assert silent["exp_alerts"] == [] and firing["exp_alerts"]
    silent["exp_alerts"] = firing["exp_alerts"]
    wrong = tmp_path / "wrong.yml"
    wrong.write_text(yaml.safe_dump(document))

    result = promtool.test_rules([wrong], PROMTOOL)
    assert not result.ok
    assert "FAILED" in result.output
    assert f"alertname: ProcessorAvailabilityBurnRateHigh, time: {silent['eval_time']}" in result.output


def test_a_wrong_threshold_fails_the_committed_tests(tmp_path):
    """And a rule that drifts from the seed (0.08 instead of 0.072) is caught by the committed tests."""
    rules = tmp_path / "rules" / "slo-processor-availability.yml"
    rules.parent.mkdir()
    rules.write_text((MONITORING / "rules" / "slo-processor-availability.yml").read_text()
                     .replace("> 0.072", "> 0.5"))
    document = yaml.safe_load((MONITORING / "rules-tests" / "slo-processor-availability.yml").read_text())
    document["rule_files"] = [str(rules)]
    test_file = tmp_path / "test.yml"
    test_file.write_text(yaml.safe_dump(document))
    result = promtool.test_rules([test_file], PROMTOOL)
    assert not result.ok and "FAILED" in result.output


def test_multiwindow_rules_fire_and_resolve_as_predicted(tmp_path):
    document = yaml.safe_load(SPEC.read_text())
    document["alerting"]["mode"] = "multiwindow"
    document["slos"] = [s for s in document["slos"] if s["name"] == "processor-availability"]
    catalog = parse(document)
    layout = Layout(tmp_path / "rules", tmp_path / "rules-tests", "slos.yaml")
    written = write_all(render(catalog, layout), layout)
    check = promtool.check_rules([p for p in written if "rules-tests" not in p.parts], PROMTOOL)
    assert check.ok, check.output
    tests = sorted(p for p in written if "rules-tests" in p.parts)
    # Production grids 30s (1h), 1m (6h), 15m (3d); drill grids 1s (1m and 6m windows), 15s (72m).
    assert len(tests) == 5
    failed = {p: r.output for p, r in run_tests(tests).items() if not r.ok}
    assert not failed, failed
    assert {a.name for a in burn_alerts(drill_copy(catalog).slo("processor-availability"))} == {
        "ProcessorAvailabilityBurnRateHigh", "ProcessorAvailabilityBurnRateHigh6h", "ProcessorAvailabilityBurnRate3d"}
