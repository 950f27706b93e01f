"""A real kind cluster for the cluster tests: made by scripts/kind-cluster-up.sh (the offline node image on
machines without a registry), reached through kubectl, and removed at the end if the tests made it."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from kind_pins import pins

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("GAMEDAY_CACHE", Path.home() / ".cache" / "chaos-dr-verify"))
TEST_CLUSTER = "gameday-test"
"""Its own name (and no host ports), so a user's `make kind-up` cluster is neither reused nor touched."""
DOCKERD_MARKER = CACHE / "dockerd" / "started-by-gameday.pid"


def tools_path() -> str:
    """PATH with the kind and kubectl that scripts/kind-build.sh built first, as the kind scripts use them."""
    versions = pins()
    built = [CACHE / "kind" / f"kind-{versions['KIND_VERSION']}" / "bin",
             CACHE / "kind" / f"kubernetes-{versions['KUBERNETES_VERSION']}" / "bin"]
    return os.pathsep.join([str(p) for p in built if p.is_dir()] + [os.environ.get("PATH", "")])


@dataclass
class Kube:
    """kubectl against one context, failing with kubectl's own message."""
    context: str
    path: str

    def proc(self, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["kubectl", "--context", self.context, *args], input=stdin, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "PATH": self.path})

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
        proc = self.proc(*args, stdin=stdin, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout if check else proc.stdout + proc.stderr

    def exec(self, namespace: str, pod: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """`sh -c command` in the pod's container."""
        return self.proc("-n", namespace, "exec", pod, "--", "sh", "-c", command, timeout=timeout)

    def ready_pod(self, namespace: str, name: str, timeout: float = 120) -> dict:
        """The pod, once its Ready condition is True."""
        def ready():
            proc = self.proc("-n", namespace, "get", "pod", name, "-o", "json")
            if proc.returncode != 0:
                return None
            pod = json.loads(proc.stdout)
            conditions = pod.get("status", {}).get("conditions", [])
            return pod if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else None
        return self.wait_for(f"pod {namespace}/{name} Ready", ready, timeout)

    def json(self, *args: str) -> dict:
        return json.loads(self.run(*args, "-o", "json"))

    def apply(self, manifest: str, namespace: str | None = None) -> None:
        self.run(*(["-n", namespace] if namespace else []), "apply", "-f", "-", stdin=manifest)

    def wait_for(self, what: str, condition, timeout: float = 120, every: float = 0.5):
        """Poll condition() until it returns something truthy, and return that; fail naming what never came."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not seen within {timeout:.0f} s")
            time.sleep(every)


def docker_available() -> str | None:
    """None when a Docker engine can be used here (running, or dockerd there to start), else why not."""
    if not shutil.which("docker"):
        return "docker is not installed (Debian: apt-get install docker.io)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return None
    if not shutil.which("dockerd"):
        return "no Docker engine answers and there is no dockerd to start"
    if os.geteuid() != 0:
        return "no Docker engine answers, and starting dockerd needs root"
    return None


def cluster_exists(path: str, name: str) -> bool:
    proc = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True,
                          env={**os.environ, "PATH": path})
    return name in proc.stdout.split()


def build_test_image() -> str:
    """A small image built here, not pulled: Debian's static busybox (sh, nc, kill) under tini, as the stack's
    image runs its service under tini. Named by a checksum of its contents."""
    busybox, tini = Path("/bin/busybox"), shutil.which("tini-static")
    missing = [name for name, path in (("busybox-static", busybox if busybox.exists() else None),
                                        ("tini", tini)) if path is None]
    if missing:
        raise AssertionError(f"the test image needs Debian's {' and '.join(missing)} (apt-get install {' '.join(missing)})")
    digest = subprocess.run(["sha256sum", str(busybox), tini], capture_output=True, text=True, check=True).stdout
    tag = f"gameday.local/cluster-test:{hashlib.sha256(digest.encode()).hexdigest()[:12]}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0:
        return tag
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    archive = CACHE / "kind" / "cluster-test-image.tar"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w") as tar:
        for directory in ("bin", "sbin", "tmp", "etc"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, "bin/busybox")
        tar.add(tini, "sbin/tini")
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
    subprocess.run(["docker", "import", "--change", 'ENTRYPOINT ["/sbin/tini", "--"]',
                    "--change", "ENV PATH=/bin:/sbin", str(archive), tag], check=True, capture_output=True)
    archive.unlink()
    return tag
