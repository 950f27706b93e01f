"""Real local parts for service tests: an Apache Kafka node, a SecantusDB, the processor and producer services.

``Services`` is a context manager that starts processes on free ports and stops every one of them by
PID on exit (terminate, wait, kill), and raises if any is still alive afterwards.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient, NewTopic

from chaos_dr_stack.local.ports import free_base_port, tcp_open, wait_until

VENV_BIN = Path(sys.executable).parent
TOPICS = {"gpu-events": 4, "token-events": 2, "events-dlq": 1}


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


@dataclass
class Services:
    workdir: Path
    base: int = field(default_factory=free_base_port)
    procs: list[Proc] = field(default_factory=list)

    @property
    def kafka_port(self) -> int:
        return self.base + 2

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_port(self) -> int:
        return self.base + 3

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/?directConnection=true"

    def __enter__(self) -> Services:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        alive = [(p.name, p.pid) for p in self.procs if p.alive()]
        if alive:
            raise RuntimeError(f"processes still alive after teardown: {alive}")

    def spawn(self, name: str, argv: list[str], port: int | None = None, env: dict[str, str] | None = None) -> Proc:
        log_path = self.workdir / f"{name}-{len(self.procs)}.log"
        with open(log_path, "wb") as log_file:
            popen = subprocess.Popen(
                argv, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=str(Path.cwd())
            )
        proc = Proc(name, popen, log_path, port)
        self.procs.append(proc)
        return proc

    @property
    def kafka_controller_port(self) -> int:
        return self.base + 4

    def start_broker(self) -> Proc:
        """One Apache Kafka KRaft node from the jars `make deps` fetched. Its data directory lives in the work
        directory, so a restarted node keeps its topics, offsets and producer ids."""
        from chaos_dr_stack.local.kraft import format_storage, kafka_libs, new_cluster_id, plan_nodes, server_argv, write_config

        libs = kafka_libs()
        (node,) = plan_nodes(1, "127.0.0.1", [self.kafka_port, self.kafka_controller_port], self.workdir / "kafka")
        write_config(node, [node])
        format_storage(libs, node, new_cluster_id())
        proc = self.spawn("kafka", server_argv(libs, node))
        # A JVM on a shared 2-core machine takes 5-20 s to listen.
        _require(wait_until(lambda: proc.alive() and broker_answers(self.bootstrap), 90, 0.3), proc,
                 "the broker did not answer metadata")
        return proc

    def start_mongo(self) -> Proc:
        argv = [str(VENV_BIN / "secantusd-py"), "--host", "127.0.0.1", "--port", str(self.mongo_port),
                "--storage-path", str(self.workdir / "secantus"), "--log-level", "WARNING"]
        proc = self.spawn("secantus", argv)
        _require(wait_until(lambda: tcp_open(self.mongo_port), 20), proc, "SecantusDB port did not open")
        return proc

    def create_topics(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(t, n, 1) for t, n in TOPICS.items()], operation_timeout=5)
        for topic, future in futures.items():
            try:
                future.result(10)
            except Exception as exc:  # an existing topic is fine
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise

    def start_processor(self, index: int, *extra: str) -> Proc:
        port = self.base + 10 + index
        argv = [sys.executable, "-m", "chaos_dr_stack.processor", "--name", f"processor-{index}", "--host", "127.0.0.1",
                "--port", str(port), "--bootstrap", self.bootstrap, "--mongo-uri", self.mongo_uri, *extra]
        return self.spawn(f"processor-{index}", argv, port)

    def start_producers(self, *extra: str) -> Proc:
        port = self.base + 7
        argv = [sys.executable, "-m", "chaos_dr_stack.producers", "--host", "127.0.0.1", "--port", str(port),
                "--bootstrap", self.bootstrap, *extra]
        return self.spawn("producers", argv, port)


def broker_answers(bootstrap: str) -> bool:
    """Does a broker at ``bootstrap`` answer a metadata request naming itself? A client made before the listener
    is up would only log refused connections, so the port is tried first."""
    if not tcp_open(int(bootstrap.rsplit(":", 1)[1])):
        return False
    try:
        return bool(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=1.0).brokers)
    except Exception:  # KafkaException until the broker has joined its own quorum
        return False


def _require(ok: bool, proc: Proc, message: str) -> None:
    if not ok:
        raise RuntimeError(f"{proc.name} (pid {proc.pid}): {message}; log:\n{proc.log()[-2000:]}")


def wait_http_ok(proc: Proc, path: str = "/health", timeout: float = 20.0) -> None:
    def ok() -> bool:
        try:
            return httpx.get(proc.url + path, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    _require(proc.alive() and wait_until(ok, timeout, 0.1), proc, f"GET {path} never returned 200")


def metric(proc: Proc, name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``; 0.0 when there are none."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(proc.url + "/metrics", timeout=2).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                total += sample.value
    return total


def sigkill(proc: Proc) -> float:
    """SIGKILL and reap; returns the time of the kill (time.monotonic)."""
    at = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    proc.popen.wait(5)
    return at


@contextmanager
def processor_database(workdir: Path, app_name: str) -> Iterator[Any]:
    """A SecantusDB of its own with the processor's database ``ca3`` and its indexes, as the processor writes it;
    stopped on exit."""
    from chaos_dr_stack.processor import store

    with Services(workdir) as services:
        services.start_mongo()
        client = store.connect(services.mongo_uri, timeout_ms=5000, socket_timeout_ms=30000, app_name=app_name)
        db = store.database(client, "ca3")
        store.ensure_indexes(db)
        try:
            yield db
        finally:
            client.close()
