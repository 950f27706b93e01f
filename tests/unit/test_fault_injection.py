"""The processor's fault hook and the load generator's arguments: pure logic and the ASGI app, no stack."""
from fractions import Fraction

import pytest
from fastapi.testclient import TestClient

from chaoslib_ext.actions.api_faults import heal_api_errors, inject_api_errors
from chaoslib_ext.errors import InvalidArgument, TargetUnreachable
from probes.alerts import alert_fire_seconds, alert_resolve_seconds, alert_stays_silent
from chaos_dr_stack.loadgen.generator import validate_rate
from chaos_dr_stack.local.faults import FaultRequestError, parse_http_errors
from chaos_dr_stack.processor.api import create_app
from chaos_dr_stack.processor.faults import DeterministicInjector, FaultArgumentError, HttpErrorFault, parse_fault

NOWHERE = {"target": "local", "local_control_url": "http://127.0.0.1:9"}
TOKEN = "test-token"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def injector_with(ratio: str, ttl: float = 60.0, clock=None) -> DeterministicInjector:
    injector = DeterministicInjector(clock or Clock())
    injector.set(HttpErrorFault(Fraction(ratio), 503, ttl))
    return injector


@pytest.mark.parametrize(("ratio", "requests", "failed"), [
    ("0.05", 100, 5), ("0.05", 1000, 50), ("0.04", 100, 4), ("0.04", 24, 0), ("0.04", 25, 1),
    ("1", 37, 37), ("0", 500, 0), ("0.072", 1000, 72), ("0.5", 7, 3),
])
def test_injection_fails_exactly_floor_n_times_p(ratio, requests, failed):
    injector = injector_with(ratio)
    assert sum(injector.decide() is not None for _ in range(requests)) == failed


def test_failures_are_spread_evenly_every_25th_request_at_4_percent():
    injector = injector_with("0.04")
    failed = [n for n in range(1, 201) if injector.decide() == 503]
    assert failed == [25, 50, 75, 100, 125, 150, 175, 200]


def test_no_window_of_requests_exceeds_the_ratio_by_more_than_one_request():
    injector = injector_with("0.04")
    outcomes = [injector.decide() is not None for _ in range(2000)]
    for width in (10, 50, 100):
        worst = max(sum(outcomes[i:i + width]) for i in range(len(outcomes) - width))
        assert worst <= width * 0.04 + 1


def test_the_fault_clears_itself_at_expiry_and_a_new_one_restarts_the_count():
    clock = Clock()
    injector = injector_with("1", ttl=2.0, clock=clock)
    assert injector.decide() == 503
    clock.now += 1.999
    assert injector.describe()["active"] is True
    clock.now += 0.001
    assert injector.decide() is None and injector.describe() == {"active": False}
    injector.set(HttpErrorFault(Fraction("0.5"), 500, 10))
    assert [injector.decide() for _ in range(4)] == [None, 500, None, 500]
    assert injector.clear() is True and injector.clear() is False


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"ratio": 1.5, "status": 503, "ttl_seconds": 5}, "ratio", "must be within [0, 1], got 1.5"),
    ({"ratio": "0.5", "status": 503, "ttl_seconds": 5}, "ratio", "must be a number, got '0.5'"),
    ({"ratio": True, "status": 503, "ttl_seconds": 5}, "ratio", "must be a number, got True"),
    ({"status": 503, "ttl_seconds": 5}, "ratio", "is required"),
    ({"ratio": 0.5, "status": 404, "ttl_seconds": 5}, "status", "must be one of 500, 503, got 404"),
    ({"ratio": 0.5, "status": 503}, "ttl_seconds", "is required"),
    ({"ratio": 0.5, "status": 503, "ttl_seconds": 0}, "ttl_seconds", "must be > 0"),
    ({"ratio": 0.5, "status": 503, "ttl_seconds": 5, "seed": 1}, "seed", "unknown field"),
    ([1], "body", "must be a JSON object"),
])
def test_bad_fault_parameters_name_the_field(body, field, message):
    with pytest.raises(FaultArgumentError) as caught:
        parse_fault(body)
    assert caught.value.field == field and message in str(caught.value)
    with pytest.raises(FaultRequestError, match=f"^{field}: |^body must"):
        parse_http_errors(body, now=0.0)


def test_the_ratio_is_parsed_exactly():
    assert parse_fault({"ratio": 0.05, "status": 500, "ttl_seconds": 1}).ratio == Fraction(1, 20)


@pytest.fixture
def api():
    return TestClient(create_app({}, kafka_ok=lambda: True, mongo_ok=lambda: True, fault_token=TOKEN))


def hook(client, method, body=None, token=TOKEN):
    headers = {"X-Gameday-Token": token} if token is not None else {}
    return client.request(method, "/_gameday/fault", json=body, headers=headers)


@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_the_hook_refuses_without_the_token_and_changes_nothing(api, token):
    response = hook(api, "PUT", {"ratio": 1, "status": 503, "ttl_seconds": 60}, token=token)
    assert response.status_code == 403
    assert "X-Gameday-Token" in response.json()["detail"] or "x-gameday-token" in response.json()["detail"]
    assert api.get("/health").status_code == 200
    assert hook(api, "GET").json() == {"active": False}


def test_a_processor_without_a_token_has_the_hook_disabled():
    client = TestClient(create_app({}, kafka_ok=lambda: True, mongo_ok=lambda: True))
    response = hook(client, "PUT", {"ratio": 1, "status": 503, "ttl_seconds": 60}, token="anything")
    assert response.status_code == 403 and "disabled" in response.json()["detail"]


def test_bad_parameters_are_400_naming_the_field(api):
    response = hook(api, "PUT", {"ratio": 2, "status": 503, "ttl_seconds": 60})
    assert response.status_code == 400
    assert response.json()["detail"] == "ratio: must be within [0, 1], got 2"
    assert hook(api, "GET").json() == {"active": False}


def test_injected_errors_carry_the_header_are_counted_and_spare_metrics_and_the_hook(api):
    assert hook(api, "PUT", {"ratio": 1, "status": 500, "ttl_seconds": 60}).status_code == 200
    response = api.get("/health")
    assert response.status_code == 500 and response.headers["X-Gameday-Injected"] == "1"
    assert api.get("/gpu/info").status_code == 500
    metrics = api.get("/metrics")
    assert metrics.status_code == 200 and "X-Gameday-Injected" not in metrics.headers
    lines = [line for line in metrics.text.splitlines() if line.startswith("starlette_requests_total")]
    assert 'starlette_requests_total{app_name="processor",method="GET",path="/health",status_code="500"} 1.0' in lines
    assert 'starlette_requests_total{app_name="processor",method="GET",path="/gpu/info",status_code="500"} 1.0' in lines
    assert not [line for line in lines if "_gameday" in line]
    assert hook(api, "GET").json()["injected"] == 2
    assert hook(api, "DELETE").json() == {"healed": True}
    assert api.get("/health").status_code == 200


def test_the_kubelets_probes_are_not_failed_and_do_not_count_towards_the_ratio(api):
    hook(api, "PUT", {"ratio": 0.5, "status": 503, "ttl_seconds": 60})
    probe = {"User-Agent": "kube-probe/1.37"}
    assert [api.get("/health", headers=probe).status_code for _ in range(4)] == [200] * 4
    assert [api.get("/health").status_code for _ in range(4)] == [200, 503, 200, 503]
    assert hook(api, "GET").json()["injected"] == 2


def test_unknown_paths_are_not_failed(api):
    hook(api, "PUT", {"ratio": 1, "status": 503, "ttl_seconds": 60})
    assert api.get("/nope").status_code == 404


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ratio": 1.2}, r"ratio must be a number within \[0, 1\], got 1.2"),
    ({"ratio": "1"}, r"ratio must be a number within \[0, 1\], got '1'"),
    ({"status": 502}, "status must be one of 500, 503, got 502"),
    ({"ttl_seconds": 0}, "ttl_seconds must be a number > 0 and <= 3600, got 0"),
    ({"ttl_seconds": None}, "ttl_seconds must be a number > 0 and <= 3600, got None"),
])
def test_inject_api_errors_validates_before_reaching_the_target(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        inject_api_errors(configuration=NOWHERE, **kwargs)


def test_good_arguments_reach_for_the_target():
    with pytest.raises(TargetUnreachable, match="did not answer PUT /faults/http-errors"):
        inject_api_errors(ratio=0.5, configuration=NOWHERE)
    with pytest.raises(TargetUnreachable, match="did not answer DELETE /faults/http-errors"):
        heal_api_errors(configuration=NOWHERE)


def test_alert_probe_arguments_are_checked_first(tmp_path):
    config = {**NOWHERE, "gameday_timeline": str(tmp_path / "t.jsonl")}
    with pytest.raises(InvalidArgument, match="profile must be one of drill, production, got 'staging'"):
        alert_fire_seconds(profile="staging", configuration=config)
    with pytest.raises(InvalidArgument, match="timeout must be a number > 0, got 0"):
        alert_resolve_seconds(timeout=0, configuration=config)
    with pytest.raises(InvalidArgument, match="alertname must be a non-empty string"):
        alert_stays_silent(alertname="", configuration=config)


@pytest.mark.parametrize("rate", [-1, 1001, "5", True])
def test_loadgen_rate_is_bounded(rate):
    with pytest.raises(ValueError, match="rate must be a number within"):
        validate_rate(rate)
