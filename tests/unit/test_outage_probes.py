"""How long users wait after a database outage: measured against a real HTTP server that answers 503, then 200."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest

from chaoslib_ext import timeline
from chaoslib_ext.errors import BudgetExceeded, InvalidArgument, NoData
from chaoslib_ext.targets.base import Instance, Target
from probes import outage


class Api:
    """Answers /health 503 until ``healthy_at`` (time.time()), 200 afterwards."""

    def __init__(self, healthy_at: float):
        self.healthy_at = healthy_at
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server interface
                status = 200 if time.time() >= api.healthy_at else 503
                body = b'{"status": "ok"}' if status == 200 else b'{"status": "down", "mongo": false}'
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def endpoint(self, name: str) -> str:
        assert name == "processor_api"
        return self.url

    def close(self) -> None:
        pass

    def __enter__(self) -> "Api":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@pytest.fixture
def config(tmp_path):
    cfg = {"gameday_timeline": str(tmp_path / "timeline.jsonl")}
    timeline.record("run.started", cfg, at=time.time() - 60)  # before the planted outage began
    return cfg


def outage_ended(config, ago: float) -> float:
    back_at = time.time() - ago
    timeline.record("run.method_started", config, at=back_at - 16)
    timeline.record("fault.database_outage", config, at=back_at - 15, ttl_seconds=15, expires_at=back_at)
    return back_at


def test_before_the_method_there_is_nothing_to_wait_for(config):
    assert outage.api_recovery_seconds(configuration=config) == 0.0
    assert outage.api_recovery_report(configuration=config) == 0.0


def test_the_wait_is_counted_from_the_database_coming_back_to_the_first_200(config):
    back_at = outage_ended(config, ago=0.5)
    api = Api(healthy_at=back_at + 1.5)
    try:
        with mock.patch.object(outage, "from_configuration", return_value=api):
            seconds = outage.api_recovery_seconds(configuration=config)
    finally:
        api.server.shutdown()
    assert 1.5 <= seconds < 1.5 + 2 * outage.RECOVERY_POLL_SECONDS + 0.5
    assert outage.api_recovery_report(configuration=config) == seconds


def test_no_200_within_the_timeout_names_the_last_answer(config):
    outage_ended(config, ago=0.0)
    api = Api(healthy_at=float("inf"))
    try:
        with mock.patch.object(outage, "from_configuration", return_value=api):
            with pytest.raises(BudgetExceeded, match=r'did not answer 200 within 1 s .* last answer: 503 .*"mongo": false'):
                outage.api_recovery_seconds(timeout=1, configuration=config)
    finally:
        api.server.shutdown()
    with pytest.raises(NoData, match="api_recovery_seconds did not run or never saw a 200"):
        outage.api_recovery_report(configuration=config)


@pytest.mark.parametrize("arguments", [{"path": "health"}, {"timeout": 0}, {"timeout": True}, {"timeout": "30"}])
def test_bad_arguments_are_refused(config, arguments):
    with pytest.raises(InvalidArgument):
        outage.api_recovery_seconds(configuration=config, **arguments)


class Replicas(Api):
    """Two processor replicas, both out of their service's rotation: one answers /health itself, one nothing."""

    kind = "test"
    ask_replica = Target.ask_replica

    def instances(self, component: str = "processor") -> list[Instance]:
        return [Instance("processor-a", component, 1, 0.0, 0, False, "starting", url=self.url),
                Instance("processor-b", component, 2, 0.0, 0, False, "starting", url=f"http://127.0.0.1:{CLOSED}")]


CLOSED = 9
"""The discard port: nothing listens on it here, so connections are refused."""


def test_health_during_an_outage_asks_each_replica_itself_and_counts_the_silent_ones(config):
    replicas = Replicas(healthy_at=time.time() + 60)
    now = time.time()
    timeline.record("run.method_started", config, at=now - 3)
    timeline.record("fault.database_outage", config, at=now - 2, ttl_seconds=5.5, expires_at=now + 3.5)
    with mock.patch.object(outage, "from_configuration", return_value=replicas):
        seen = outage.health_during_outage(configuration=config)
    assert seen["samples"] >= 2 and seen["truthful"] == seen["samples"] and seen["lying"] == []
    assert seen["unanswered"] == seen["samples"]  # processor-b, once a round
    assert outage.health_during_outage_report(configuration=config)["lies"] == 0
