"""The local stack runner against the real parts: Apache Kafka (one KRaft node), SecantusDB, Prometheus,
Alertmanager, and the stack's own processor and producers, all on loopback."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pymongo
import pytest
from confluent_kafka.admin import AdminClient

from chaos_dr_stack.local.api import (
    LocalStack,
    StackStartError,
    pick_base_port,
    stack_processes,
    stack_status,
    start_stack,
    stop_stack,
)
from chaos_dr_stack.local.layout import StackLayout
from chaos_dr_stack.local.procs import cmdline_matches, pid_alive, read_cmdline, read_json
from chaos_dr_stack.local.topics import TOPICS

pytestmark = pytest.mark.integration

RECOVERY_TIMEOUT = 30.0
"""Seconds a killed replica may take to be ready again: 0.5 s back-off plus a Python service's start, with room
for a loaded 2-core machine."""
BROKER_RECOVERY_TIMEOUT = 60.0
"""A restarted KRaft node replays its log and takes its controller and broker roles again: 17.5 s on a quiet
machine (docs/benchmarks.md), more beside CI's other worker."""


def wait_for(check, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll ``check`` until it returns a truthy value, which is returned; fail naming ``what`` after ``timeout``.
    A connection error counts as "not yet"."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"{what} not reached within {timeout} s (last value: {last!r})")


def control(stack: LocalStack) -> httpx.Client:
    return httpx.Client(base_url=stack.endpoints["control"], timeout=5.0)


def processors(stack: LocalStack) -> dict[str, dict]:
    with control(stack) as http:
        body = http.get("/instances", params={"component": "processor"}).json()
    return {i["name"]: i for i in body["instances"]}


def test_stack_comes_up_with_every_component_ready(local_stack):
    status = stack_status(local_stack.state_dir)
    assert status["ready"] is True
    not_ready = [c["name"] for c in status["components"] if not c["ready"]]
    assert not_ready == [], f"components not ready: {not_ready}"
    names = {c["name"] for c in status["components"]}
    assert {"kafka", "mongo", "prometheus", "alertmanager", "producers", "processor-0", "processor-1"} <= names
    assert status["base_port"] == local_stack.base_port

    layout = StackLayout(local_stack.base_port, local_stack.state_dir)
    assert local_stack.endpoints == layout.endpoints()
    runner = read_json(layout.files.runner_json)
    assert runner["control_url"] == local_stack.endpoints["control"] and pid_alive(runner["pid"])


def test_every_endpoint_answers(local_stack):
    e = local_stack.endpoints
    assert httpx.get(f"{e['processor_api']}/health").json() == {"status": "ok", "kafka": True, "mongo": True}
    assert httpx.get(f"{e['producers']}/health").status_code == 200
    assert httpx.get(f"{e['prometheus']}/-/ready").status_code == 200
    assert httpx.get(f"{e['alertmanager']}/-/ready").status_code == 200
    with pymongo.MongoClient(e["mongo_uri"], serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1
    metadata = AdminClient({"bootstrap.servers": e["kafka_bootstrap"]}).list_topics(timeout=10)
    partitions = {name: len(metadata.topics[name].partitions) for name in TOPICS if name in metadata.topics}
    assert partitions == TOPICS


def test_prometheus_scrapes_the_runner_and_the_processors(local_stack):
    prometheus = local_stack.endpoints["prometheus"]

    def healthy_jobs():
        targets = httpx.get(f"{prometheus}/api/v1/targets").json()["data"]["activeTargets"]
        up = {(t["labels"]["job"], t["labels"].get("pod")) for t in targets if t["health"] == "up"}
        wanted = {
            ("stack-runner", None), ("processor", "processor-0"), ("processor", "processor-1"), ("producers", None),
            ("kafka", "kafka-1"),
        }
        return wanted <= up

    wait_for(healthy_jobs, 30, 0.5, "every scrape target up")


def test_instances_lists_both_processor_replicas_with_their_pids(local_stack):
    replicas = processors(local_stack)
    assert sorted(replicas) == ["processor-0", "processor-1"]
    for name, replica in replicas.items():
        assert replica["component"] == "processor"
        assert replica["ready"] is True and replica["state"] == "running"
        assert pid_alive(replica["pid"])
        command = read_cmdline(replica["pid"])
        assert command[1:3] == ["-m", "chaos_dr_stack.processor"] and command[command.index("--name") + 1] == name
        assert replica["url"] == f"http://127.0.0.1:{local_stack.base_port + 10 + int(name[-1])}"


def restarts_in_prometheus(prometheus: str, pod: str) -> float | None:
    query = f'kube_pod_container_status_restarts_total{{namespace="app",pod="{pod}"}}'
    result = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_sigkilled_processor_comes_back_and_its_restart_is_counted(local_stack):
    before = processors(local_stack)["processor-0"]
    api = local_stack.endpoints["processor_api"]

    with control(local_stack) as http:
        killed = http.post("/instances/processor-0/kill", json={"signal": "SIGKILL"}).json()
    assert killed["name"] == "processor-0" and killed["pid"] == before["pid"] and killed["signal"] == "SIGKILL"
    assert abs(killed["killed_at"] - time.time()) < 5

    # The service keeps answering from the surviving replica while processor-0 is down.
    answers = []
    while True:
        answers.append(httpx.get(f"{api}/health", timeout=5).status_code)
        now = processors(local_stack)["processor-0"]
        if now["ready"] and now["pid"] != before["pid"]:
            break
        assert time.time() - killed["killed_at"] < RECOVERY_TIMEOUT, f"processor-0 not back: {now}"
    assert now["restarts"] == before["restarts"] + 1
    assert not pid_alive(before["pid"])
    assert set(answers) == {200}, f"processor API answered {answers} while a replica was down"
    assert len(answers) >= 3, "the replica came back before the balancer could be checked"

    series = 'kube_pod_container_status_restarts_total{container="processor",namespace="app",pod="processor-0"}'
    expected = f"{series} {float(now['restarts'])}"
    assert expected in httpx.get(f"{local_stack.endpoints['control']}/metrics").text
    wait_for(
        lambda: restarts_in_prometheus(local_stack.endpoints["prometheus"], "processor-0") == now["restarts"],
        30, 0.5, f"Prometheus showing {now['restarts']} restart(s) of processor-0",
    )


def test_kill_refuses_an_unknown_instance_naming_it(local_stack):
    with control(local_stack) as http:
        response = http.post("/instances/processor-9/kill", json={"signal": "SIGKILL"})
    assert response.status_code == 404
    assert "unknown instance 'processor-9'" in response.json()["detail"]
    assert "processor-0" in response.json()["detail"]


@pytest.mark.parametrize("sig", ["SIGHUP", "9", "", None])
def test_kill_refuses_a_signal_that_is_not_allowed_listing_the_allowed_ones(local_stack, sig):
    with control(local_stack) as http:
        response = http.post("/instances/processor-0/kill", json={"signal": sig})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"signal {sig!r} is not allowed; use one of: SIGKILL, SIGTERM, SIGINT, SIGSTOP, SIGCONT"
    )


def test_kill_refuses_a_body_that_is_not_a_json_object(local_stack):
    with control(local_stack) as http:
        response = http.post("/instances/processor-0/kill", content=b"SIGKILL")
    assert response.status_code == 400
    assert "body must be a JSON object" in response.json()["detail"]
    assert processors(local_stack)["processor-0"]["ready"]


def test_alertmanager_notifications_reach_the_webhook(local_stack):
    alert = {"labels": {"alertname": "RunnerWebhookCheck", "severity": "none"}, "annotations": {}}
    response = httpx.post(f"{local_stack.endpoints['alertmanager']}/api/v2/alerts", json=[alert])
    assert response.status_code == 200

    def notified():
        body = httpx.get(f"{local_stack.endpoints['control']}/alerts").json()
        return [
            n for n in body["notifications"]
            if any(a["labels"].get("alertname") == "RunnerWebhookCheck" for a in n["alerts"])
        ]

    notification = wait_for(notified, 20, 0.2, "the webhook receiving the test alert")[0]
    assert notification["status"] == "firing"
    assert set(notification["alerts"][0]) == {"status", "labels", "startsAt", "endsAt"}


def test_a_frozen_replica_leaves_the_service_until_it_thaws(local_stack):
    before = processors(local_stack)["processor-1"]
    with control(local_stack) as http:
        assert http.post("/instances/processor-1/kill", json={"signal": "SIGSTOP"}).status_code == 200
        try:
            wait_for(lambda: not processors(local_stack)["processor-1"]["ready"], 10, 0.1, "processor-1 not ready")
            time.sleep(0.6)  # one endpoint refresh of the service
            # A stopped process still completes TCP handshakes, so only readiness keeps requests off it.
            answers = [httpx.get(f"{local_stack.endpoints['processor_api']}/health", timeout=3).status_code
                       for _ in range(10)]
            assert answers == [200] * 10
        finally:
            http.post("/instances/processor-1/kill", json={"signal": "SIGCONT"})
    after = wait_for(lambda: (p := processors(local_stack)["processor-1"])["ready"] and p, 20, 0.1, "processor-1 ready")
    assert (after["pid"], after["restarts"]) == (before["pid"], before["restarts"])


def test_the_service_refuses_connections_while_no_replica_is_ready(local_stack):
    port = local_stack.base_port + 6
    with control(local_stack) as http:
        try:
            for name in ("processor-0", "processor-1"):
                assert http.post(f"/instances/{name}/kill", json={"signal": "SIGSTOP"}).status_code == 200
            wait_for(lambda: not any(p["ready"] for p in processors(local_stack).values()), 10, 0.1,
                     "no processor ready")
            time.sleep(0.6)  # one endpoint refresh of the service
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
        finally:
            for name in ("processor-0", "processor-1"):
                http.post(f"/instances/{name}/kill", json={"signal": "SIGCONT"})
    wait_for(lambda: all(p["ready"] for p in processors(local_stack).values()), 20, 0.1, "both processors ready")
    wait_for(lambda: httpx.get(f"{local_stack.endpoints['processor_api']}/health", timeout=3).status_code == 200,
             5, 0.1, "the service answering again")


def test_a_restarted_broker_gets_the_contract_topics_back(local_stack):
    with control(local_stack) as http:
        killed = http.post("/instances/kafka/kill", json={"signal": "SIGKILL"}).json()
        kafka = wait_for(
            lambda: (k := http.get("/instances", params={"component": "kafka"}).json()["instances"][0])["ready"]
            and k["pid"] != killed["pid"] and k,
            BROKER_RECOVERY_TIMEOUT, 0.05, "kafka ready again",
        )
        assert kafka["restarts"] == 1
        # Producers reconnect at once; the topics must still get the contract's partition counts, not the
        # broker's default for an auto-created topic.
        metadata = AdminClient({"bootstrap.servers": local_stack.endpoints["kafka_bootstrap"]}).list_topics(timeout=10)
        assert {name: len(metadata.topics[name].partitions) for name in TOPICS if name in metadata.topics} == TOPICS
        wait_for(lambda: http.get("/status").json()["ready"], 60, 0.5, "the whole stack ready again")


def test_the_provider_services_are_supervised_scraped_and_answer(local_stack):
    e = local_stack.endpoints
    base = local_stack.base_port
    assert (e["providers"], e["ai_decision"], e["market_data"]) == tuple(
        f"http://127.0.0.1:{base + k}" for k in (21, 22, 23))
    with control(local_stack) as http:
        names = {i["name"]: i for i in http.get("/instances").json()["instances"]}
    for name in ("provider-simulator", "ai-decision", "market-data"):
        assert names[name]["ready"] is True and names[name]["component"] == name
    decision = httpx.post(f"{e['ai_decision']}/decision", json={"symbol": "AAPL"}, timeout=15).json()
    assert decision["provider"] == "openai" and decision["decision"] in ("buy", "sell", "hold")
    quote = wait_for(lambda: (q := httpx.get(f"{e['market_data']}/quote/AAPL").json()).get("cached") and q, 15, 0.2,
                     "a cached AAPL quote")
    assert quote["provider"] == "alpaca" and quote["stale"] is False

    prometheus = e["prometheus"]

    def scraped() -> bool:
        targets = httpx.get(f"{prometheus}/api/v1/targets").json()["data"]["activeTargets"]
        up = {t["labels"]["job"] for t in targets if t["health"] == "up"}
        return {"provider-simulator", "ai-decision", "market-data"} <= up

    wait_for(scraped, 30, 0.5, "the provider services' scrape targets up")


def test_provider_faults_go_through_the_runner_and_survive_a_simulator_restart(local_stack):
    providers = local_stack.endpoints["providers"]
    with control(local_stack) as http:
        applied = http.put("/faults/providers/alpaca", json={"mode": "error", "status": 503, "ttl_seconds": 60})
        assert applied.status_code == 200, applied.text
        fault = applied.json()
        assert (fault["kind"], fault["provider"], fault["mode"], fault["status"]) == ("provider", "alpaca", "error", 503)
        listed = [f for f in http.get("/faults").json()["faults"] if f["kind"] == "provider"]
        assert [(f["provider"], f["expires_at"]) for f in listed] == [("alpaca", fault["expires_at"])]
        assert httpx.get(f"{providers}/alpaca/v2/stocks/AAPL/quotes/latest").status_code == 503

        bad = http.put("/faults/providers/alpaca", json={"mode": "latency", "ttl_seconds": 5})
        assert bad.status_code == 400 and bad.json()["detail"].startswith("latency_ms:")
        unknown = http.put("/faults/providers/yahoo", json={"mode": "error", "ttl_seconds": 5})
        assert unknown.status_code == 404 and "unknown provider 'yahoo'" in unknown.json()["detail"]
        # Without the runner's token, nobody else can change the simulator's faults.
        assert httpx.delete(f"{providers}/_faults").status_code == 403

        killed = http.post("/instances/provider-simulator/kill", json={"signal": "SIGKILL"}).json()
        wait_for(lambda: (i := http.get("/instances", params={"component": "provider-simulator"}).json()["instances"][0])
                 ["ready"] and i["pid"] != killed["pid"], RECOVERY_TIMEOUT, 0.1, "the simulator ready again")
        # The restarted simulator got the fault back before it counted as ready.
        assert httpx.get(f"{providers}/alpaca/v2/stocks/AAPL/quotes/latest").status_code == 503

        healed = http.delete("/faults/providers/alpaca").json()
        assert (healed["kind"], healed["provider"], healed["was_active"]) == ("provider", "alpaca", True)
        assert httpx.get(f"{providers}/alpaca/v2/stocks/AAPL/quotes/latest").status_code == 200
        http.put("/faults/providers/gdelt", json={"mode": "timeout", "ttl_seconds": 60})
        assert http.delete("/faults/providers").json()["healed"] == ["gdelt"]
        assert [f for f in http.get("/faults").json()["faults"] if f["kind"] == "provider"] == []


def test_start_fails_naming_a_port_that_is_taken(stack_binaries, stack_dirs):
    base = pick_base_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 6))
        squatter.listen()
        with pytest.raises(StackStartError) as failure:
            start_stack(base, stack_dirs("port-taken"), timeout=30)
    message = str(failure.value)
    assert f"port(s) {base + 6} (held by pid {os.getpid()}" in message
    assert "runner exited with code 2" in message


def test_a_component_that_dies_on_start_fails_the_start_with_its_log_and_stops_the_rest(stack_binaries, stack_dirs):
    state_dir = stack_dirs("mongo-broken")
    (state_dir / "mongo").write_text("a file where the database directory should be\n")
    with pytest.raises(StackStartError) as failure:
        start_stack(pick_base_port(), state_dir, timeout=60)
    message = str(failure.value)
    assert "runner exited with code 1: mongo exited with code 1" in message
    assert f"last lines of {state_dir}/logs/mongo.log" in message
    assert "FileExistsError" in message
    assert stack_processes(state_dir) == []


def test_start_fails_naming_a_missing_program_and_how_to_install_it(stack_dirs):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))  # no /usr/bin: no prometheus
    result = subprocess.run(
        [sys.executable, "-m", "chaos_dr_stack.local.runner", "--base-port", str(pick_base_port()),
         "--state-dir", str(stack_dirs("no-prometheus"))],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "prometheus was not found on PATH" in result.stderr
    assert "apt-get install prometheus prometheus-alertmanager" in result.stderr


def test_stop_leaves_no_recorded_process_alive(stack_binaries, stack_dirs):
    state_dir = stack_dirs("stopped")
    stack = LocalStack(state_dir=state_dir, rate=1)
    with stack:
        recorded = stack.pids()
        assert set(recorded) == {
            "runner", "kafka", "mongo", "prometheus", "alertmanager", "producers", "processor-0", "processor-1", "loadgen",
            "provider-simulator", "ai-decision", "market-data",
            "backup",
        }
        assert all(pid_alive(pid) for pid in recorded.values())
        stopped = stop_stack(state_dir)
        assert stopped[0] == "runner" and set(stopped) == set(recorded)
        still_alive = {name: pid for name, pid in recorded.items() if pid_alive(pid)}
        assert still_alive == {}
        assert not (state_dir / "runner.json").exists()
        assert stack_status(state_dir) is None


def _what_is_left(pid: int, log: Path) -> str:
    """A survivor's command line, state and threads' wait channels, and its log's tail: enough to tell where it
    hangs (or whether its PID was taken by another process)."""
    proc = Path(f"/proc/{pid}")
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("State:"))
        wchans = sorted({(task / "wchan").read_text() for task in (proc / "task").iterdir()})
    except (OSError, StopIteration) as exc:
        cmdline, state, wchans = f"({exc})", "", []
    tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else ["(no log)"]
    return f"pid {pid}: {cmdline} {state} waiting in {wchans}\n  " + "\n  ".join(tail)


def test_children_die_with_a_sigkilled_runner_and_stop_cleans_up(stack_binaries, stack_dirs):
    state_dir = stack_dirs("runner-killed")
    with LocalStack(state_dir=state_dir, rate=1) as stack:
        recorded = stack.pids()
        argv = {name: child["argv"] for name, child in read_json(state_dir / "pids.json")["children"].items()}
        os.kill(recorded["runner"], signal.SIGKILL)

        def alive() -> dict[str, int]:
            # By PID and command line: over a long test run PIDs wrap, and a PID may already be another process's.
            return {name: pid for name, pid in recorded.items() if pid_alive(pid)
                    and (name not in argv or cmdline_matches(read_cmdline(pid), argv[name]))}

        # Each child gets SIGTERM from the kernel and has the contract's 10 s to exit, with its broker gone too.
        deadline = time.monotonic() + 30
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive() == {}, "still alive 30 s after the runner was SIGKILLed:\n" + "\n".join(
            _what_is_left(pid, state_dir / "logs" / f"{name}.log") for name, pid in alive().items())
        status = stack_status(state_dir)
        assert status["ready"] is False and status["runner_alive"] is False
        assert stop_stack(state_dir) == []
        assert not (state_dir / "runner.json").exists()


def test_a_new_stack_has_its_own_metrics_and_alert_state_unless_told_to_keep_them(stack_binaries, stack_dirs):
    """Prometheus' TSDB and Alertmanager's store outlive `stack down`. A new stack in the same state directory
    starts both empty (its counters restart at 0 under the old labels, which `increase()` would add to the old
    ones); `keep_metrics` keeps them."""
    state_dir = stack_dirs("restarted-twice")
    lean = ("--without-provider-services",)

    def runner_series_at(stack: LocalStack, at: float) -> list:
        response = httpx.get(f"{stack.endpoints['prometheus']}/api/v1/query",
                             params={"query": 'up{job="stack-runner"}', "time": f"{at:.3f}"}, timeout=5.0)
        return response.json()["data"]["result"]

    def silences(stack: LocalStack) -> list[str]:
        body = httpx.get(f"{stack.endpoints['alertmanager']}/api/v2/silences", timeout=5.0).json()
        return [s["comment"] for s in body if s["status"]["state"] == "active"]

    with LocalStack(state_dir=state_dir, rate=1, runner_args=lean) as first:
        scraped_at = wait_for(lambda: [float(r["value"][0]) for r in runner_series_at(first, time.time())], 30,
                              what="a scrape of the runner")[0]
        now = time.time()
        httpx.post(f"{first.endpoints['alertmanager']}/api/v2/silences", timeout=5.0, json={
            "matchers": [{"name": "alertname", "value": "FirstStackOnly", "isRegex": False}],
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
            "createdBy": "test", "comment": "first stack's silence"}).raise_for_status()
    assert (state_dir / "prometheus").is_dir() and (state_dir / "alertmanager").is_dir()  # outlived the stack

    with LocalStack(state_dir=state_dir, rate=1, runner_args=lean, keep_metrics=True) as kept:
        assert runner_series_at(kept, scraped_at) != [], "--keep-metrics lost the first stack's series"
        assert silences(kept) == ["first stack's silence"]

    with LocalStack(state_dir=state_dir, rate=1, runner_args=lean) as fresh:
        assert runner_series_at(fresh, scraped_at) == []
        assert silences(fresh) == []
        assert "left by an earlier stack" in (state_dir / "logs" / "runner.log").read_text()
