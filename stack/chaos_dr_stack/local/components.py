"""What the local stack runs: one spec per supervised instance, and the programs they need.

Specs are plain data (argv, readiness check, timeout, start stage), so the command lines can be checked against
docs/local-stack-contract.md without starting anything.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chaos_dr_stack.local.layout import LOOPBACK, PROCESSOR_REPLICAS, StackLayout
from chaos_dr_stack.local.readiness import LivenessProbe, ReadyCheck

PROCESSOR_ARGS_ENV = "STACK_PROCESSOR_ARGS"
"""Extra processor flags for every replica, shell-quoted, read by the runner when it builds the specs."""
BACKUP_ARGS_ENV = "STACK_BACKUP_ARGS"
"""Extra backup agent flags, shell-quoted: tests snapshot every few seconds (``--interval-s 5``)."""
MONGO_ARGS_ENV = "STACK_MONGO_ARGS"
"""Extra SecantusDB flags, shell-quoted: tests that stall the database on purpose turn on mongod's failpoints
(``--enable-test-commands``)."""
AI_DECISION_ARGS_ENV = "STACK_AI_DECISION_ARGS"
"""Extra AI decision service flags, shell-quoted: tests shorten the circuit's cooldown (``--cooldown-s 4``)."""
APT_HINT = "install it with `apt-get install prometheus prometheus-alertmanager`"


class MissingBinary(RuntimeError):
    """A program the stack runs is not installed. The message says how to install it."""


@dataclass(frozen=True)
class Binaries:
    secantusd: str
    prometheus: str
    alertmanager: str


def find_binaries() -> Binaries:
    """Locate every program the stack runs, or raise MissingBinary naming the first one missing. Kafka's jars and
    Java are found by ``chaos_dr_stack.local.kraft``."""
    # Prefer the interpreter's own environment, so a venv that is not activated still works.
    secantusd = _beside_python("secantusd-py") or shutil.which("secantusd-py")
    if not secantusd:
        raise MissingBinary(
            "secantusd-py (the SecantusDB server) was not found; install it with `pip install SecantusDB`"
        )
    prometheus = shutil.which("prometheus")
    if not prometheus:
        raise MissingBinary(f"prometheus was not found on PATH; {APT_HINT}")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not alertmanager:
        raise MissingBinary(f"prometheus-alertmanager was not found on PATH; {APT_HINT}")
    return Binaries(secantusd=secantusd, prometheus=prometheus, alertmanager=alertmanager)


def _beside_python(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else None


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    """Instance name, the pod name in Kubernetes terms: 'processor-0'."""
    component: str
    """What it is an instance of, the container name: 'processor'."""
    argv: tuple[str, ...]
    ready: ReadyCheck
    ready_timeout: float
    """Seconds from spawn to ready before a start counts as failed."""
    stage: int
    """Start order: every instance of a stage is ready before the next stage starts; stop goes in reverse."""
    url: str
    death_signal: int = signal.SIGTERM
    """What the kernel sends the instance when the runner dies without stopping it."""
    liveness: LivenessProbe | None = None
    """When the supervisor kills a running instance that no longer works (None: only when it exits)."""


def mongo_liveness(port: int) -> LivenessProbe:
    """SecantusDB was seen to deadlock once, in CI: one connection's thread stopped inside its storage engine while
    holding the storage lock, and every other operation queued behind it until its 1,000 connections were taken;
    it served nothing until the stack was stopped 6 min later. ``ping`` does not need that lock, ``listDatabases``
    does. A Kubernetes livenessProbe would restart such a pod; this is the local stack's. Six failures 5 s apart
    (30-60 s without an answer) is far longer than any operation takes here. A database frozen by SIGSTOP is
    restarted after as long, as a frozen container would be."""
    return LivenessProbe(ReadyCheck("mongo-storage", port), period=5.0, timeout=5.0, failure_threshold=6)


DEFAULT_API_RATE = 20.0
"""Requests per second of the load generator (CUJ-1 users): enough that a 5 s drill window holds ~100 requests,
so a 4 % fault is 4 requests in 100 and never looks like 7.2 %."""


def kafka_specs(layout: StackLayout, kafka_argvs: Sequence[Sequence[str]]) -> list[ComponentSpec]:
    """One instance per Kafka node: ``kafka`` alone, or ``kafka-1`` .. ``kafka-N`` (the node ids) in a cluster."""
    if len(kafka_argvs) != layout.kafka_brokers:
        raise ValueError(f"{len(kafka_argvs)} Kafka command lines for a layout of {layout.kafka_brokers} nodes")
    return [ComponentSpec(
        name="kafka" if len(kafka_argvs) == 1 else f"kafka-{node}", component="kafka", argv=tuple(argv),
        ready=ReadyCheck("tcp", layout.kafka_listener_port(node)),
        ready_timeout=60,  # a JVM on a shared 2-core machine takes 5-20 s to listen
        stage=0, url=f"tcp://{LOOPBACK}:{layout.kafka_listener_port(node)}",
        # A SIGTERMed node shuts down through the controller, which it reaches through the runner's proxy: with
        # the runner dead it would wait for ever. Its log recovers from a kill, as from a power cut.
        death_signal=signal.SIGKILL,
    ) for node, argv in zip(layout.kafka_nodes, kafka_argvs)]


def build_specs(
    layout: StackLayout, binaries: Binaries, rate: float, *, kafka_argvs: Sequence[Sequence[str]],
    python: str = sys.executable, api_rate: float = DEFAULT_API_RATE, provider_services: bool = True,
) -> list[ComponentSpec]:
    """``provider_services``: also the provider simulator, AI decision and market data services (B+21..B+23).
    ``kafka_argvs``: the Apache Kafka nodes to run (``chaos_dr_stack.local.kraft.prepare_stack_cluster``), one per node of
    ``layout``."""
    d = layout.state_dir
    specs = kafka_specs(layout, kafka_argvs) + [
        ComponentSpec(
            name="mongo",
            component="mongo",
            argv=(
                binaries.secantusd,
                "--host", LOOPBACK, "--port", str(layout.mongo_port),
                "--storage-path", str(d / "mongo"),
                *shlex.split(os.environ.get(MONGO_ARGS_ENV, "")),
            ),
            ready=ReadyCheck("mongo", layout.mongo_port),
            ready_timeout=30,
            stage=0,
            url=layout.mongo_uri,
            liveness=mongo_liveness(layout.mongo_port),
        ),
        ComponentSpec(
            name="alertmanager",
            component="alertmanager",
            argv=(
                binaries.alertmanager,
                f"--config.file={layout.files.alertmanager_config}",
                f"--storage.path={layout.files.alertmanager_data}",
                f"--web.listen-address={LOOPBACK}:{layout.alertmanager_port}",
                "--cluster.listen-address=",  # else it also binds 9094, which two stacks would fight over
            ),
            ready=ReadyCheck("http", layout.alertmanager_port, "/-/ready"),
            ready_timeout=30,
            stage=0,
            url=f"http://{LOOPBACK}:{layout.alertmanager_port}",
        ),
        ComponentSpec(
            name="prometheus",
            component="prometheus",
            argv=(
                binaries.prometheus,
                f"--config.file={layout.files.prometheus_config}",
                f"--storage.tsdb.path={layout.files.prometheus_data}",
                f"--web.listen-address={LOOPBACK}:{layout.prometheus_port}",
                "--web.enable-lifecycle",
            ),
            ready=ReadyCheck("http", layout.prometheus_port, "/-/ready"),
            ready_timeout=30,
            stage=0,
            url=f"http://{LOOPBACK}:{layout.prometheus_port}",
        ),
        ComponentSpec(
            name="producers",
            component="producers",
            argv=(
                python, "-m", "chaos_dr_stack.producers",
                "--host", LOOPBACK, "--port", str(layout.producers_port),
                "--bootstrap", layout.kafka_bootstrap,
                "--rate", f"{rate:g}",
            ),
            ready=ReadyCheck("http", layout.producers_port, "/health"),
            ready_timeout=30,
            stage=1,
            url=f"http://{LOOPBACK}:{layout.producers_port}",
        ),
    ]
    for i in range(PROCESSOR_REPLICAS):
        port = layout.processor_port(i)
        specs.append(
            ComponentSpec(
                name=f"processor-{i}",
                component="processor",
                argv=(
                    python, "-m", "chaos_dr_stack.processor",
                    "--name", f"processor-{i}",
                    "--host", LOOPBACK, "--port", str(port),
                    "--bootstrap", layout.kafka_bootstrap,
                    "--mongo-uri", layout.mongo_uri,
                    # Experiments compare consumer settings: e.g. STACK_PROCESSOR_ARGS="--session-timeout-ms 45000".
                    *shlex.split(os.environ.get(PROCESSOR_ARGS_ENV, "")),
                ),
                ready=ReadyCheck("http", port, "/health"),
                ready_timeout=30,
                stage=1,
                url=f"http://{LOOPBACK}:{port}",
            )
        )
    if provider_services:
        specs += provider_specs(layout, python)
    specs.append(
        ComponentSpec(
            name="backup",
            component="backup",
            argv=(
                python, "-m", "chaos_dr_stack.backup",
                "--host", LOOPBACK, "--port", str(layout.backup_port),
                "--mongo-uri", layout.mongo_uri,
                "--bootstrap", layout.kafka_bootstrap,
                "--store", str(layout.files.backup_store),
                *shlex.split(os.environ.get(BACKUP_ARGS_ENV, "")),
            ),
            ready=ReadyCheck("http", layout.backup_port, "/health"),
            ready_timeout=30,
            stage=1,
            url=f"http://{LOOPBACK}:{layout.backup_port}",
        )
    )
    specs.append(
        ComponentSpec(
            name="loadgen",
            component="loadgen",
            argv=(
                python, "-m", "chaos_dr_stack.loadgen",
                "--host", LOOPBACK, "--port", str(layout.loadgen_port),
                "--target", f"http://{LOOPBACK}:{layout.processor_api_port}",
                "--rate", f"{api_rate:g}",
            ),
            ready=ReadyCheck("http", layout.loadgen_port, "/health"),
            ready_timeout=30,
            stage=2,  # after the processors: its first requests should find the service listening
            url=f"http://{LOOPBACK}:{layout.loadgen_port}",
        )
    )
    return specs


PROVIDER_SERVICES_READY_TIMEOUT = 60
"""Seconds from spawn to ready. ~2 s on a quiet machine; over 30 s was measured for the simulator with the 2 cores
at a load average of 55 (several test runs at once), where three Python services importing FastAPI (and openai)
together are slow to start. Nothing waits on them but the stack's own readiness."""
PROVIDER_SIMULATOR = "provider-simulator"
AI_DECISION = "ai-decision"
MARKET_DATA = "market-data"


def provider_specs(layout: StackLayout, python: str = sys.executable) -> list[ComponentSpec]:
    """The AI Active Trader side: the provider simulator and the two services that call it, in a stage of their own
    after everything else: their imports (the openai client alone is ~1.7 s of CPU) made the load generator and the
    producers miss their 30 s readiness timeouts when they started alongside them on a loaded 2-core machine. They add
    ~3 s to a stack's start on a quiet one. The services cope with a simulator that is not up yet, so they need no
    order among themselves."""
    providers_url = f"http://{LOOPBACK}:{layout.provider_simulator_port}"

    def spec(name: str, module: str, port: int, *extra: str) -> ComponentSpec:
        return ComponentSpec(
            name=name,
            component=name,
            argv=(python, "-m", module, "--host", LOOPBACK, "--port", str(port), *extra),
            ready=ReadyCheck("http", port, "/health"),
            ready_timeout=PROVIDER_SERVICES_READY_TIMEOUT,
            stage=3,
            url=f"http://{LOOPBACK}:{port}",
        )

    return [
        spec(PROVIDER_SIMULATOR, "chaos_dr_stack.providers", layout.provider_simulator_port),
        spec(AI_DECISION, "chaos_dr_stack.ai_decision", layout.ai_decision_port, "--providers-url", providers_url,
             *shlex.split(os.environ.get(AI_DECISION_ARGS_ENV, ""))),
        spec(MARKET_DATA, "chaos_dr_stack.market_data", layout.market_data_port, "--providers-url", providers_url),
    ]
