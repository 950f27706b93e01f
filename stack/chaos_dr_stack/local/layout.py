"""Where one stack instance lives: its ports (from one base port) and its files (in one state directory).

Pure data, shared by the runner, the client API and the tests, so the port table of
docs/local-stack-contract.md is written down in exactly one place in code.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
DISTRIBUTION_ROOT = Path(__file__).resolve().parents[2]
"""The directory that holds the ``chaos_dr_stack`` package: children put it first on their import path."""
# The alert and recording rules are shared with the Kubernetes manifests, so they stay in the checkout's deploy/.
REPO_ROOT = DISTRIBUTION_ROOT.parent
RULES_GLOB = REPO_ROOT / "deploy" / "monitoring" / "rules" / "*.yml"
DRILL_RULES_GLOB = REPO_ROOT / "deploy" / "monitoring" / "rules" / "drill" / "*.yml"
"""The time-scaled copy (docs/slos.md): records under ``slo_drill:``, alerts carry ``profile="drill"``."""
PROCESSOR_REPLICAS = 2
MAX_KAFKA_BROKERS = 3
"""Kafka nodes a local stack can run: the port table has room for three."""
RUNNER_MODULE = "chaos_dr_stack.local.runner"
"""Run with ``python -m``; also how a runner's pid is recognised in /proc/<pid>/cmdline."""

STATE_DIR_ENV = "STACK_RUNNER_STATE_DIR"
"""Set in the environment of the runner and of every child. It marks a process as belonging to one stack,
so a test can prove that nothing of its stack outlived it (see procs.processes_marked)."""


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for client sockets' local ports. A stack port inside it can be taken by any outgoing
    connection while the service that owns it restarts."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


@dataclass(frozen=True)
class StackLayout:
    base_port: int
    state_dir: Path
    kafka_brokers: int = 1

    def __post_init__(self) -> None:
        if not 1024 <= self.base_port <= 65535 - 40:
            raise ValueError(f"base port {self.base_port} is outside 1024..65495 (the stack needs 40 ports above it)")
        brokers = self.kafka_brokers
        if isinstance(brokers, bool) or not isinstance(brokers, int) or not 1 <= brokers <= MAX_KAFKA_BROKERS:
            raise ValueError(f"the number of Kafka brokers must be a whole number from 1 to {MAX_KAFKA_BROKERS}, "
                             f"got {brokers!r}")
        object.__setattr__(self, "state_dir", Path(self.state_dir).resolve())

    # Ports, per the contract's table.
    @property
    def control_port(self) -> int:
        return self.base_port

    def kafka_proxy_port(self, node: int) -> int:
        """Where clients reach Kafka node ``node`` (1-based): its fault proxy, which the node advertises."""
        return self.base_port + (1 if node == 1 else 24 + node)

    def kafka_listener_port(self, node: int) -> int:
        """Node ``node``'s own client listener; only its proxy connects here."""
        return self.base_port + (2 if node == 1 else 26 + node)

    def kafka_controller_port(self, node: int) -> int:
        """Node ``node``'s KRaft controller listener."""
        return self.base_port + (8 if node == 1 else 28 + node)

    def kafka_controller_proxy_port(self, node: int) -> int:
        """Where the other nodes reach node ``node``'s controller: its fault proxy, which the quorum's voter list
        names, so a partition can cut quorum traffic too."""
        return self.base_port + 31 + node

    def kafka_metrics_port(self, node: int) -> int:
        """Node ``node``'s Prometheus metrics (its JMX exporter agent)."""
        return self.base_port + 34 + node

    @property
    def kafka_nodes(self) -> range:
        return range(1, self.kafka_brokers + 1)

    @property
    def proxy_port(self) -> int:
        return self.kafka_proxy_port(1)

    @property
    def broker_port(self) -> int:
        return self.kafka_listener_port(1)

    @property
    def controller_port(self) -> int:
        return self.kafka_controller_port(1)

    @property
    def mongo_port(self) -> int:
        return self.base_port + 3

    @property
    def prometheus_port(self) -> int:
        return self.base_port + 4

    @property
    def alertmanager_port(self) -> int:
        return self.base_port + 5

    @property
    def processor_api_port(self) -> int:
        return self.base_port + 6

    @property
    def producers_port(self) -> int:
        return self.base_port + 7

    def processor_port(self, index: int) -> int:
        return self.base_port + 10 + index

    @property
    def loadgen_port(self) -> int:
        return self.base_port + 20

    @property
    def provider_simulator_port(self) -> int:
        return self.base_port + 21

    @property
    def ai_decision_port(self) -> int:
        return self.base_port + 22

    @property
    def market_data_port(self) -> int:
        return self.base_port + 23

    @property
    def backup_port(self) -> int:
        return self.base_port + 24

    # Addresses.
    @property
    def control_url(self) -> str:
        return f"http://{LOOPBACK}:{self.control_port}"

    @property
    def kafka_bootstrap(self) -> str:
        """Every node's proxy, so a client that starts while one node is down still finds the cluster."""
        return ",".join(f"{LOOPBACK}:{self.kafka_proxy_port(node)}" for node in self.kafka_nodes)

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://{LOOPBACK}:{self.mongo_port}/?directConnection=true"

    def endpoints(self) -> dict[str, str]:
        return {
            "control": self.control_url,
            "processor_api": f"http://{LOOPBACK}:{self.processor_api_port}",
            "prometheus": f"http://{LOOPBACK}:{self.prometheus_port}",
            "alertmanager": f"http://{LOOPBACK}:{self.alertmanager_port}",
            "producers": f"http://{LOOPBACK}:{self.producers_port}",
            "loadgen": f"http://{LOOPBACK}:{self.loadgen_port}",
            "kafka_bootstrap": self.kafka_bootstrap,
            "mongo_uri": self.mongo_uri,
            "providers": f"http://{LOOPBACK}:{self.provider_simulator_port}",
            "ai_decision": f"http://{LOOPBACK}:{self.ai_decision_port}",
            "market_data": f"http://{LOOPBACK}:{self.market_data_port}",
            "backup": f"http://{LOOPBACK}:{self.backup_port}",
        }

    @property
    def files(self) -> StateFiles:
        return StateFiles(self.state_dir)


@dataclass(frozen=True)
class StateFiles:
    """The files of a stack in its state directory; what a client needs without knowing the base port."""

    state_dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir).resolve())

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    @property
    def runner_json(self) -> Path:
        return self.state_dir / "runner.json"

    @property
    def pids_json(self) -> Path:
        return self.state_dir / "pids.json"

    @property
    def prometheus_config(self) -> Path:
        return self.state_dir / "prometheus.yml"

    @property
    def backup_store(self) -> Path:
        return self.state_dir / "backups"

    @property
    def mongo_data(self) -> Path:
        return self.state_dir / "mongo"

    @property
    def alertmanager_config(self) -> Path:
        return self.state_dir / "alertmanager.yml"

    @property
    def prometheus_data(self) -> Path:
        """Prometheus' TSDB (``--storage.tsdb.path``): new for every stack unless the runner keeps it."""
        return self.state_dir / "prometheus"

    @property
    def alertmanager_data(self) -> Path:
        """Alertmanager's notification log and silences (``--storage.path``): new for every stack, like
        Prometheus' store, unless the runner keeps it."""
        return self.state_dir / "alertmanager"
