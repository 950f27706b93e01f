"""The burn-rate drill on a real local stack: the fault hook's token, its TTL, re-application after a restart,
and a total outage that fires ProcessorAvailabilityBurnRateHigh{profile="drill"} and resolves it.

One stack for the module (its own, so the session stack's alerts and restarts are not disturbed); the tests run
in file order and each leaves no fault behind. The drill runs before any other fault, so its 5 s window starts
clean.
"""
from __future__ import annotations

import time

import httpx
import pytest
from waiting import wait_for

from chaoslib_ext.actions.api_faults import heal_api_errors, inject_api_errors
from probes.alerts import alert_fire_seconds, alert_resolve_seconds
from chaos_dr_stack.local.api import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(stack_binaries, stack_dirs):
    with LocalStack(state_dir=stack_dirs("alert-drill"), rate=2) as running:
        yield running


@pytest.fixture(scope="module")
def control(stack):
    with httpx.Client(base_url=stack.control_url, timeout=5) as client:
        yield client


def replica_url(stack, index: int) -> str:
    return f"http://127.0.0.1:{stack.base_port + 10 + index}"


def test_the_load_generator_sends_api_traffic_that_prometheus_scrapes(stack):
    query = 'sum(rate(starlette_requests_total{job="processor",path="/gpu/info"}[5s]))'
    prometheus = stack.endpoints["prometheus"] + "/api/v1/query"

    def rate():
        result = httpx.get(prometheus, params={"query": query}).json()["data"]["result"]
        return result and float(result[0]["value"][1]) > 5
    wait_for(rate, 20, "/gpu/info traffic from the load generator")
    loadgen = stack.endpoints["loadgen"]
    assert httpx.post(loadgen + "/rate", json={"rate": 2000}).status_code == 400
    assert httpx.get(loadgen + "/rate").json() == {"rate": 20.0}
    up = httpx.get(prometheus, params={"query": 'up{job="loadgen"}'}).json()["data"]["result"]
    assert up and up[0]["value"][1] == "1"


def test_the_hook_refuses_without_the_token_and_nothing_changes(stack, control):
    response = httpx.put(replica_url(stack, 0) + "/_gameday/fault", json={"ratio": 1, "status": 503, "ttl_seconds": 30})
    assert response.status_code == 403
    response = httpx.put(replica_url(stack, 0) + "/_gameday/fault", headers={"X-Gameday-Token": "guess"},
                         json={"ratio": 1, "status": 503, "ttl_seconds": 30})
    assert response.status_code == 403
    assert all(httpx.get(replica_url(stack, 0) + "/health").status_code == 200 for _ in range(5))
    assert control.get("/faults").json() == {"faults": []}


def test_the_control_api_names_a_bad_field(control):
    response = control.put("/faults/http-errors", json={"ratio": 0.5, "status": 418, "ttl_seconds": 5})
    assert response.status_code == 400
    assert response.json()["detail"] == "status: must be one of 500, 503, got 418"
    response = control.put("/faults/http-errors", json={"ratio": 0.5, "status": 503})
    assert response.status_code == 400 and response.json()["detail"] == "ttl_seconds: is required"
    assert control.get("/faults").json() == {"faults": []}


def test_a_total_outage_fires_the_drill_alert_within_prediction_and_it_resolves(stack, tmp_path):
    config = {"local_control_url": stack.control_url, "gameday_timeline": str(tmp_path / "timeline.jsonl")}
    baseline = alert_fire_seconds(configuration=config)
    assert baseline.pop("settled_after_s") < 1
    assert baseline == {"phase": "baseline", "alertname": "ProcessorAvailabilityBurnRateHigh", "profile": "drill",
                        "active_now": [], "within_prediction": True}
    inject_api_errors(ratio=1.0, status=503, ttl_seconds=60, configuration=config)
    try:
        fired = alert_fire_seconds(timeout=30, configuration=config)
    finally:
        heal_api_errors(configuration=config)
    resolved = alert_resolve_seconds(timeout=30, configuration=config)
    print("fired", fired, "resolved", resolved)
    assert (fired["predicted_lower_s"], fired["predicted_upper_s"]) == (6.36, 8.36)
    assert fired["within_prediction"] is True, fired
    assert fired["fired_in_prometheus_s"] <= fired["webhook_s"]
    assert fired["reached_alertmanager_s"] is not None and fired["reached_alertmanager_s"] <= fired["webhook_s"]
    assert (resolved["predicted_lower_s"], resolved["predicted_upper_s"]) == (5.64, 7.64)
    assert resolved["within_prediction"] is True, resolved
    # The same probe after the fact returns the measurement recorded for this fault.
    assert alert_fire_seconds(configuration=config) == fired


def test_a_baseline_waits_for_an_alert_left_active_to_clear(stack, tmp_path):
    """An alert still pending or firing from an earlier experiment fails the baseline at once, and clears within
    the settle timeout once its errors have stopped."""
    alerts = stack.endpoints["prometheus"] + "/api/v1/alerts"

    def critical_active():
        return [a["state"] for a in httpx.get(alerts).json()["data"]["alerts"]
                if a["labels"].get("alertname") == "ProcessorAvailabilityBurnRateHigh"
                and a["labels"].get("profile") == "drill"]
    config = {"local_control_url": stack.control_url, "gameday_timeline": str(tmp_path / "earlier.jsonl")}
    inject_api_errors(ratio=1.0, status=503, ttl_seconds=30, configuration=config)
    try:
        wait_for(critical_active, 20, "the critical drill alert pending")
    finally:
        heal_api_errors(configuration=config)
    fresh = {"local_control_url": stack.control_url, "gameday_timeline": str(tmp_path / "this-run.jsonl")}
    unsettled = alert_fire_seconds(configuration=fresh)
    assert unsettled["within_prediction"] is False and unsettled["active_now"], unsettled
    settled = alert_fire_seconds(baseline_settle_timeout=30, configuration=fresh)
    assert settled["within_prediction"] is True and settled["active_now"] == [], settled
    assert 0 < settled["settled_after_s"] < 30
    assert critical_active() == []


def test_a_fault_heals_itself_at_its_ttl(stack, control):
    applied = control.put("/faults/http-errors", json={"ratio": 1.0, "status": 500, "ttl_seconds": 1.5}).json()
    assert applied["applied_to"] == ["processor-0", "processor-1"]
    listed = control.get("/faults").json()["faults"]
    assert [f["kind"] for f in listed] == ["http-errors"] and listed[0]["expires_at"] == applied["expires_at"]
    response = httpx.get(stack.endpoints["processor_api"] + "/gpu/info")
    assert response.status_code == 500 and response.headers["X-Gameday-Injected"] == "1"
    wait_for(lambda: time.time() > applied["expires_at"] + 0.05, 3, "expiry")
    assert [httpx.get(replica_url(stack, i) + "/gpu/info").status_code for i in (0, 1)] == [200, 200]
    assert control.get("/faults").json() == {"faults": []}
    # The replicas answered with an injected error and stayed in the service meanwhile.
    assert all(i["ready"] and i["restarts"] == 0 for i in control.get("/instances", params={"component": "processor"}).json()["instances"])


def test_a_replica_restarted_while_a_fault_lives_gets_it_back(stack, control):
    control.put("/faults/http-errors", json={"ratio": 1.0, "status": 503, "ttl_seconds": 30})
    try:
        old = next(i for i in control.get("/instances").json()["instances"] if i["name"] == "processor-1")
        control.post("/instances/processor-1/kill", json={"signal": "SIGKILL"})

        def back():
            now = next(i for i in control.get("/instances").json()["instances"] if i["name"] == "processor-1")
            return now["ready"] and now["pid"] != old["pid"]
        wait_for(back, 20, "processor-1 ready again")
        response = httpx.get(replica_url(stack, 1) + "/gpu/info")
        assert response.status_code == 503 and response.headers["X-Gameday-Injected"] == "1"
    finally:
        healed = control.delete("/faults/http-errors").json()
    assert healed["was_active"] is True and healed["healed"] == ["processor-0", "processor-1"]
    assert httpx.get(replica_url(stack, 1) + "/gpu/info").status_code == 200
