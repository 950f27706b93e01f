"""Blast-radius allow-list, the outage safeguard's trip logic, and finding live `chaos run` processes."""
from __future__ import annotations

import http.server
import threading
import time

import pytest

from chaoslib_ext.cli import main
from chaoslib_ext.gameday.safety import BlastRadiusRefused, check_blast_radius
from chaoslib_ext.gameday.sweep import live_chaos_runs
from chaoslib_ext.safeguards import Limits, OutageGuard


@pytest.mark.parametrize("url", ["http://127.0.0.1:18000", "http://localhost:9", "http://[::1]:18000",
                                 "http://127.3.2.1:1"])
def test_loopback_control_urls_are_allowed(url):
    assert check_blast_radius({"target": "local", "local_control_url": url}, env={}).scope == url


def test_a_remote_control_url_is_refused_unless_allowed():
    config = {"target": "local", "local_control_url": "http://10.0.0.7:18000"}
    with pytest.raises(BlastRadiusRefused, match="10.0.0.7 is not a loopback address.*GAMEDAY_ALLOWED_HOSTS=10.0.0.7"):
        check_blast_radius(config, env={})
    assert check_blast_radius(config, env={"GAMEDAY_ALLOWED_HOSTS": "gameday.test, 10.0.0.7"}).target == "local"


def test_the_environment_url_is_checked_when_no_var_names_one():
    with pytest.raises(BlastRadiusRefused, match="db.prod.example"):
        check_blast_radius({"target": "local"}, env={"GAMEDAY_CONTROL_URL": "http://db.prod.example:18000"})


@pytest.mark.parametrize("context, namespace, allowed", [
    ("kind-gameday", "app", True),
    ("kind-ca3", None, True),
    ("prod-eu-west", "app", False),
    ("kind-gameday", "kube-system", False),
])
def test_kubernetes_contexts_and_namespaces_follow_the_allow_list(context, namespace, allowed):
    config = {"target": "kubernetes", "kube_context": context}
    if namespace:
        config["namespace"] = namespace
    if allowed:
        assert check_blast_radius(config, env={}).scope == f"{context}/{namespace or 'app'}"
    else:
        with pytest.raises(BlastRadiusRefused, match=repr(namespace if context.startswith("kind-") else context)):
            check_blast_radius(config, env={})


def test_the_kubernetes_allow_list_can_be_widened_on_purpose():
    env = {"GAMEDAY_ALLOWED_CONTEXTS": "kind-*,staging-*", "GAMEDAY_ALLOWED_NAMESPACES": "app,app-canary"}
    assert check_blast_radius({"target": "kubernetes", "kube_context": "staging-1", "namespace": "app-canary"},
                              env=env).scope == "staging-1/app-canary"


def test_no_kube_context_at_all_is_refused(tmp_path):
    with pytest.raises(BlastRadiusRefused, match="no kube context is set"):
        check_blast_radius({"target": "kubernetes"}, env={"KUBECONFIG": str(tmp_path / "missing")})


def test_gameday_run_refuses_before_any_side_effect(tmp_path, capsys):
    experiment = tmp_path / "e.yaml"
    experiment.write_text("version: 1.0.0\ntitle: t\ndescription: d\nmethod: []\n")
    code = main(["run", str(experiment), "--var", "local_control_url=http://192.0.2.10:18000",
                 "--run-dir", str(tmp_path / "runs")])
    assert code == 5
    assert "refusing the local target at http://192.0.2.10:18000" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists(), "a refused run must not even create its run directory"


class _Api(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    handler = type("Api", (_Api,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def test_the_guard_trips_once_an_outage_outlasts_the_limit(api):
    handler, url = api
    trips = []
    guard = OutageGuard(url, Limits(max_outage_seconds=0.6, interval_seconds=0.1, path="/health"), trips.append).start()
    try:
        time.sleep(0.8)
        assert trips == [], "tripped while the API answered"
        handler.status = 503
        deadline = time.monotonic() + 5
        while not trips and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        guard.stop()
    assert len(trips) == 1 and 0.6 < trips[0] < 2.0


def test_a_short_outage_does_not_trip_the_guard(api):
    handler, url = api
    trips = []
    guard = OutageGuard(url, Limits(max_outage_seconds=1.0, interval_seconds=0.1, path="/health"), trips.append).start()
    try:
        handler.status = 503
        time.sleep(0.4)
        handler.status = 200
        time.sleep(1.2)
    finally:
        guard.stop()
    assert trips == []


def test_a_refused_connection_counts_as_an_outage():
    trips = []
    guard = OutageGuard("http://127.0.0.1:9/health", Limits(0.3, 0.1, "/health"), trips.append).start()
    time.sleep(1.5)
    guard.stop()
    assert len(trips) == 1


def _fake_proc(root, pid, argv, environ=None):
    d = root / str(pid)
    d.mkdir()
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in (environ or {}).items()) + b"\0")


def test_live_chaos_runs_are_found_by_control_url(tmp_path):
    chaos = ["/venv/bin/python", "/venv/bin/chaos", "--log-file", "l", "run", "e.yaml"]
    _fake_proc(tmp_path, 101, chaos, {"GAMEDAY_CONTROL_URL": "http://127.0.0.1:21000"})
    _fake_proc(tmp_path, 102, [*chaos, "--var", "local_control_url=http://127.0.0.1:21000/"])
    _fake_proc(tmp_path, 103, chaos, {"GAMEDAY_CONTROL_URL": "http://127.0.0.1:22000"})
    _fake_proc(tmp_path, 104, chaos)  # the default URL
    _fake_proc(tmp_path, 105, ["/venv/bin/python", "/venv/bin/chaos", "validate", "e.yaml"],
               {"GAMEDAY_CONTROL_URL": "http://127.0.0.1:21000"})
    _fake_proc(tmp_path, 106, ["sleep", "run"], {"GAMEDAY_CONTROL_URL": "http://127.0.0.1:21000"})
    default = "http://127.0.0.1:18000"
    assert live_chaos_runs("http://127.0.0.1:21000", default, proc=tmp_path) == [101, 102]
    assert live_chaos_runs(default, default, proc=tmp_path) == [104]


def test_a_url_hard_coded_in_the_experiment_is_checked_too(tmp_path, capsys):
    experiment = tmp_path / "remote.yaml"
    experiment.write_text("version: 1.0.0\ntitle: t\ndescription: d\nconfiguration:\n"
                          "  local_control_url: http://203.0.113.5:18000\nmethod: []\n")
    assert main(["run", str(experiment), "--run-dir", str(tmp_path / "runs")]) == 5
    assert "refusing the local target at http://203.0.113.5:18000" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    # A --var overrides the file, as it does for chaos run.
    code = main(["run", str(experiment), "--var", "local_control_url=http://10.9.9.9:1", "--run-dir",
                 str(tmp_path / "runs")])
    assert code == 5 and "10.9.9.9" in capsys.readouterr().err


def test_an_env_entry_resolves_to_its_variable_or_default(monkeypatch, tmp_path):
    from chaoslib_ext.gameday.safety import declared_configuration

    experiment = tmp_path / "e.yaml"
    experiment.write_text("configuration:\n  local_control_url: {type: env, key: GAMEDAY_CONTROL_URL, "
                          "default: 'http://127.0.0.1:18000'}\n  target: local\n")
    assert declared_configuration(experiment, env={}) == {"local_control_url": "http://127.0.0.1:18000",
                                                          "target": "local"}
    assert declared_configuration(experiment, env={"GAMEDAY_CONTROL_URL": "http://198.51.100.1:1"})[
        "local_control_url"] == "http://198.51.100.1:1"


# --- the gate's check is the Kubernetes driver's guard -------------------------------------------------------------

GUARD_CASES = [
    ({}, {}),
    ({"kube_context": "prod-eu-west"}, {}),
    ({}, {"GAMEDAY_KUBE_CONTEXT": "prod-eu-west"}),
    ({"kube_context": "prod-eu-west"}, {"GAMEDAY_ALLOWED_CONTEXTS": "kind-*,prod-*"}),
    ({"namespace": "kube-system"}, {}),
    ({}, {"GAMEDAY_NAMESPACE": "kube-system", "GAMEDAY_ALLOWED_NAMESPACES": "app,kube-system"}),
    ({"namespace": "app"}, {"GAMEDAY_ALLOWED_NAMESPACES": "canary"}),
    ({"kube_context": "in-cluster"}, {"GAMEDAY_ALLOWED_CONTEXTS": "in-cluster"}),
    ({}, {"GAMEDAY_KUBE_CONTEXT": "in-cluster", "GAMEDAY_ALLOWED_CONTEXTS": "in-cluster",
          "CHAOSTOOLKIT_IN_POD": "true"}),
]


@pytest.mark.parametrize("config, env", GUARD_CASES)
def test_the_gate_and_the_drivers_guard_read_the_same_settings_and_agree(config, env, tmp_path, monkeypatch):
    import yaml

    from chaoslib_ext.errors import TargetMisconfigured
    from chaoslib_ext.targets.kubernetes.settings import KubernetesSettings
    from chaoslib_ext.targets.kubernetes.settings import check_blast_radius as driver_guard

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-gameday",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in ("kind-gameday", "prod-eu-west")],
    }))
    for name in ("GAMEDAY_KUBE_CONTEXT", "GAMEDAY_ALLOWED_CONTEXTS", "GAMEDAY_NAMESPACE", "GAMEDAY_ALLOWED_NAMESPACES",
                 "CHAOSTOOLKIT_IN_POD", "KUBERNETES_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    environment = {**env, "KUBECONFIG": str(kubeconfig)}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    try:
        gate = check_blast_radius({"target": "kubernetes", **config}, env=environment).scope
    except BlastRadiusRefused as exc:
        gate = f"refused: {exc}"
    try:
        settings = KubernetesSettings.from_configuration(config)
        driver = f"{driver_guard(settings)}/{settings.namespace}"
    except TargetMisconfigured as exc:
        driver = f"refused: {exc}"
    assert gate == driver
