"""The local stack runner: `python -m chaos_dr_stack.local.runner --base-port B --state-dir D [--rate 20]`.

One asyncio loop starts the CA3 stack as real processes on loopback (docs/local-stack-contract.md), supervises
them, runs the Kafka fault proxy and the processor API service in-process, and serves the control API on B.
It stops everything on SIGTERM, SIGINT or POST /shutdown. Exit codes: 0 after a clean stop, 1 when a component
failed to start, 2 when the machine is not ready for a stack (a port taken, a program missing, the state
directory in use).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

import httpx

from chaos_dr_stack.local import monitoring
from chaos_dr_stack.local.balancer import RoundRobinBalancer
from chaos_dr_stack.local.components import (
    DEFAULT_API_RATE,
    PROVIDER_SIMULATOR,
    Binaries,
    MissingBinary,
    build_specs,
    find_binaries,
)
from chaos_dr_stack.local.control import create_app, make_server, new_notifications
from chaos_dr_stack.local.faults import TOKEN_ENV, FaultBook
from chaos_dr_stack.local.holds import Holds
from chaos_dr_stack.local.layout import (
    DISTRIBUTION_ROOT,
    LOOPBACK,
    MAX_KAFKA_BROKERS,
    RUNNER_MODULE,
    STATE_DIR_ENV,
    StackLayout,
    ephemeral_port_range,
)
from chaos_dr_stack.local.ports import STACK_PORT_SPAN, busy_ports
from chaos_dr_stack.local.procs import (
    pid_alive,
    port_holder,
    read_cmdline,
    read_json,
    write_json_atomic,
)
from chaos_dr_stack.local.provider_faults import ProviderFaults
from chaos_dr_stack.local.proxy import KafkaProxy
from chaos_dr_stack.local.restart_policy import RestartPolicy
from chaos_dr_stack.local.supervisor import Instance, StartFailed
from chaos_dr_stack.local.kraft import KafkaNotInstalled, NodePorts, copies, prepare_stack_cluster
from chaos_dr_stack.local.topics import APPEND_TIME, ensure_topics

log = logging.getLogger("chaos_dr_stack.local.runner")


class NotReadyForStack(RuntimeError):
    """The machine cannot host this stack now. The message says which port, program or directory is the problem."""


def preflight(layout: StackLayout) -> tuple[Binaries, socket.socket]:
    """Check programs, the state directory and every port, then hold the control port so nothing takes it."""
    try:
        binaries = find_binaries()
    except MissingBinary as exc:
        raise NotReadyForStack(str(exc)) from exc
    previous = read_json(layout.files.runner_json) or {}
    other = previous.get("pid")
    is_runner = isinstance(other, int) and pid_alive(other) and RUNNER_MODULE in (read_cmdline(other) or [])
    if is_runner and other != os.getpid():
        raise NotReadyForStack(
            f"state directory {layout.state_dir} is in use by runner pid {other} "
            f"({previous.get('control_url')}); stop that stack first"
        )
    taken = busy_ports(layout.base_port, STACK_PORT_SPAN, LOOPBACK)
    if taken:
        described = []
        for port in taken:
            holder = port_holder(port)
            described.append(f"{port} (held by {holder})" if holder else str(port))
        raise NotReadyForStack(
            f"port(s) {', '.join(described)} already in use; the stack needs ports "
            f"{layout.base_port}..{layout.base_port + STACK_PORT_SPAN - 1} free: pick another base port or stop "
            "what holds them"
        )
    low, high = ephemeral_port_range()
    if layout.base_port <= high and layout.base_port + STACK_PORT_SPAN - 1 >= low:
        log.warning(
            "ports %d..%d overlap the ephemeral range %d..%d: a client socket may take one of them while its "
            "service restarts; a base port below %d avoids that",
            layout.base_port, layout.base_port + STACK_PORT_SPAN - 1, low, high, low - STACK_PORT_SPAN,
        )
    control = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    control.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    control.bind((LOOPBACK, layout.control_port))
    return binaries, control


class Runner:
    def __init__(
        self,
        layout: StackLayout,
        binaries: Binaries,
        rate: float = 20,
        log_level: str = "info",
        policy: RestartPolicy = RestartPolicy(),
        api_rate: float = DEFAULT_API_RATE,
        provider_services: bool = True,
        keep_metrics: bool = False,
        kafka_argvs: Sequence[Sequence[str]] = (),
    ):
        self.layout = layout
        self.kafka_argvs = kafka_argvs
        """One command line per Apache Kafka node (``chaos_dr_stack.local.kraft.prepare_stack_cluster``)."""
        self.keep_metrics = keep_metrics
        self.binaries = binaries
        self.rate = rate
        self.api_rate = api_rate
        self.provider_services = provider_services
        self.log_level = log_level
        self.policy = policy
        self.instances: dict[str, Instance] = {}
        self.notifications = new_notifications()
        self.phase = "starting"
        self.proxy = KafkaProxy(LOOPBACK, layout.proxy_port, LOOPBACK, layout.broker_port)
        for node in layout.kafka_nodes[1:]:
            self.proxy.add_route(layout.kafka_proxy_port(node), layout.kafka_listener_port(node), node)
        for node in layout.kafka_nodes:  # the KRaft quorum crosses the proxy too
            self.proxy.add_route(layout.kafka_controller_proxy_port(node), layout.kafka_controller_port(node), node)
        self.balancer = RoundRobinBalancer(LOOPBACK, layout.processor_api_port, self._ready_processors)
        self._shutdown = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        # The fault hook's secret: made here, handed to the processors in their environment only, never logged.
        self._fault_token = secrets.token_urlsafe(32)
        self.faults = FaultBook(self._fault_token, lambda: self._http, self._processor_urls)
        self.provider_faults = ProviderFaults(
            self._fault_token, lambda: self._http, f"http://{LOOPBACK}:{layout.provider_simulator_port}"
        )
        self.holds = Holds(self.instances, layout.files.mongo_data)

    # What the control API reads.
    def endpoints(self) -> dict[str, str]:
        return self.layout.endpoints()

    def status(self) -> dict:
        components = [{"name": i.name, "ready": i.ready, "state": i.state} for i in self.instances.values()]
        components += [
            {"name": "kafka-proxy", "ready": self.proxy.running, "state": self.proxy.mode},
            {"name": "processor-api", "ready": self.balancer.listening,
             "state": f"{len(self.balancer.endpoints)} endpoint(s)"},
        ]
        return {
            "ready": self.phase == "ready" and all(c["ready"] for c in components),
            "phase": self.phase,
            "base_port": self.layout.base_port,
            "state_dir": str(self.layout.state_dir),
            "components": components,
        }

    def component_up(self) -> dict[str, bool]:
        up: dict[str, bool] = {}
        for instance in self.instances.values():
            up[instance.spec.component] = up.get(instance.spec.component, True) and instance.ready
        up["kafka-proxy"] = self.proxy.running
        up["processor-api"] = self.balancer.listening
        return up

    def request_shutdown(self) -> None:
        self._shutdown.set()

    # Life.
    async def run(self, control_socket: socket.socket) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_shutdown)
        self.layout.files.logs_dir.mkdir(parents=True, exist_ok=True)
        if self.keep_metrics:
            log.info("keeping the metrics and alert state of earlier stacks in %s", self.layout.state_dir)
        else:
            for path in monitoring.fresh_stores(self.layout):
                log.info("deleted %s, left by an earlier stack (--keep-metrics keeps it)", path)
        monitoring.write_configs(self.layout)
        self._http = httpx.AsyncClient(timeout=1.0)
        server = make_server(create_app(self), LOOPBACK, self.layout.control_port, self.log_level)
        server_task = asyncio.create_task(server.serve(sockets=[control_socket]))
        code, error = 0, None
        try:
            startup = asyncio.create_task(self._start_all())
            stop_wait = asyncio.create_task(self._shutdown.wait())
            await asyncio.wait({startup, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if startup.done():
                startup.result()
                await self._shutdown.wait()
            else:
                log.info("stop requested during startup")
                startup.cancel()
                await asyncio.gather(startup, return_exceptions=True)
            stop_wait.cancel()
        except StartFailed as exc:
            code, error = 1, str(exc)
        except Exception as exc:
            log.exception("startup failed")
            code, error = 1, f"startup failed: {exc!r}"
        finally:
            await self._stop_all()
            server.should_exit = True
            await asyncio.gather(server_task, return_exceptions=True)
            await self._http.aclose()
        log.info("stopped (exit %d)", code)
        if error:
            # Last, so a client reading the log's tail finds it (api._failure_message).
            print(f"runner: error: {error}", file=sys.stderr, flush=True)
        return code

    async def _start_all(self) -> None:
        t0 = time.monotonic()
        # Take the ports served in-process before any child starts opening client sockets.
        await self.proxy.start()
        self.balancer.bind()
        env = self._child_env()
        specs = build_specs(self.layout, self.binaries, self.rate, api_rate=self.api_rate,
                            provider_services=self.provider_services, kafka_argvs=self.kafka_argvs)
        token_env = {**env, TOKEN_ENV: self._fault_token}
        for spec in specs:
            hook = None
            if spec.component == "kafka":
                hook = self._ensure_topics
            elif spec.component == "processor":
                # A replica that restarts while a fault lives gets it back before it serves anyone.
                hook = functools.partial(self.faults.reapply, spec.name, spec.url)
            elif spec.component == PROVIDER_SIMULATOR:
                hook = self.provider_faults.reapply
            with_token = spec.component in ("processor", PROVIDER_SIMULATOR)
            self.instances[spec.name] = Instance(
                spec, self.layout.files.log_path(spec.name), token_env if with_token else env,
                self.layout.state_dir, self._http, self.policy, on_spawn=self._on_spawn, before_ready=hook,
            )
        # The processor API service listens as soon as a replica is ready (it refreshes after every stage), so the
        # load generator's first requests (stage 2, CUJ-1's users) find it listening, not refusing them while the
        # later stages start.
        await self.balancer.start()
        for _, members in groupby(sorted(specs, key=lambda s: s.stage), key=lambda s: s.stage):
            names = [s.name for s in members]
            log.info("starting %s", ", ".join(names))
            await _all_or_nothing(self.instances[n].start() for n in names)
            await self.balancer.refresh()
        self.phase = "ready"
        write_json_atomic(
            self.layout.files.runner_json,
            {
                "pid": os.getpid(),
                "base_port": self.layout.base_port,
                "control_url": self.layout.control_url,
                "started_at": time.time(),
            },
        )
        log.info("stack ready in %.2f s: %s", time.monotonic() - t0, self.layout.control_url)

    async def _ensure_topics(self) -> None:
        # The broker stamps append times: what a broker fault is measured by.
        await ensure_topics(self.layout.kafka_bootstrap, replication_factor=copies(self.layout.kafka_brokers)[0],
                            config=APPEND_TIME)

    def _on_spawn(self, instance: Instance) -> None:
        self._record_pids()

    async def _stop_all(self) -> None:
        self.phase = "stopping"
        await self.holds.release_all()
        # Kafka nodes shut down through their controller: a partition left in force would hold them until killed.
        self.proxy.heal_partition()
        await self.balancer.stop()
        by_stage = sorted(self.instances.values(), key=lambda i: i.spec.stage, reverse=True)
        for _, members in groupby(by_stage, key=lambda i: i.spec.stage):
            members = list(members)
            log.info("stopping %s", ", ".join(f"{i.name} (pid {i.pid})" for i in members))
            await asyncio.gather(*(i.stop() for i in members), return_exceptions=True)
        await self.proxy.stop()
        with contextlib.suppress(FileNotFoundError):
            self.layout.files.runner_json.unlink()
        self.phase = "stopped"

    def _ready_processors(self) -> list[tuple[str, int]]:
        return [
            (LOOPBACK, self.layout.processor_port(int(i.name.rsplit("-", 1)[1])))
            for i in self.instances.values()
            if i.spec.component == "processor" and i.ready
        ]

    def _processor_urls(self) -> list[tuple[str, str]]:
        return [(i.name, i.spec.url) for i in self.instances.values() if i.spec.component == "processor"]

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop(TOKEN_ENV, None)  # only the processors and the provider simulator get a token, and only this stack's
        env[STATE_DIR_ENV] = str(self.layout.state_dir)
        env["PYTHONUNBUFFERED"] = "1"
        # Children run in the state directory; they must still import this checkout's `chaos_dr_stack`.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(DISTRIBUTION_ROOT), env.get("PYTHONPATH")) if p)
        return env

    def _record_pids(self) -> None:
        """pids.json lets `stop_stack` clean up after a runner that was killed, so it is rewritten on every spawn."""
        write_json_atomic(
            self.layout.files.pids_json,
            {
                "runner": {"pid": os.getpid(), "argv": read_cmdline(os.getpid())},
                "children": {
                    i.name: {"pid": i.proc.pid, "argv": list(i.spec.argv)}
                    for i in self.instances.values()
                    if i.proc is not None
                },
            },
        )


async def _all_or_nothing(starts) -> None:
    """Start a stage's instances together; if one fails, wait for the others to settle and raise the first error."""
    results = await asyncio.gather(*starts, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos_dr_stack.local.runner", description=__doc__.split("\n\n")[1])
    parser.add_argument("--base-port", type=int, required=True, help="first of the 40 ports the stack uses")
    parser.add_argument("--state-dir", type=Path, required=True, help="logs, configs, data, runner.json, pids.json")
    parser.add_argument("--rate", type=float, default=20, help="events per second per producer (default 20)")
    parser.add_argument("--api-rate", type=float, default=DEFAULT_API_RATE,
                        help=f"API requests per second of the load generator (default {DEFAULT_API_RATE:g})")
    parser.add_argument("--without-provider-services", action="store_true",
                        help="do not start the provider simulator, AI decision and market data services (saves ~5 s "
                             "of CPU at start and ~1 s a minute after, for runs that only exercise the CA3 pipeline)")
    parser.add_argument("--keep-metrics", action="store_true",
                        help="keep Prometheus' and Alertmanager's data left in the state directory by an earlier stack "
                             "(default: delete it at start, so this stack's series and alerts are its own: the new "
                             "replicas' counters start at 0 again, and increase() over old samples would add the "
                             "earlier stacks' restarts)")
    parser.add_argument("--kafka-brokers", type=int, default=1, metavar="N",
                        help=f"Kafka nodes, 1 to {MAX_KAFKA_BROKERS} (default 1): each a combined "
                             "broker and controller behind its own fault proxy port, topics replicated min(3, N) "
                             "times with min.insync.replicas min(2, N)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        layout = StackLayout(args.base_port, args.state_dir, kafka_brokers=args.kafka_brokers)
        layout.state_dir.mkdir(parents=True, exist_ok=True)
        binaries, control_socket = preflight(layout)
        kafka_argvs = prepare_stack_cluster(layout.state_dir, LOOPBACK, [
            NodePorts(layout.kafka_listener_port(n), layout.kafka_controller_port(n), layout.kafka_proxy_port(n),
                      layout.kafka_controller_proxy_port(n), layout.kafka_metrics_port(n))
            for n in layout.kafka_nodes])
    except (NotReadyForStack, KafkaNotInstalled, ValueError, OSError, RuntimeError) as exc:
        print(f"runner: error: {exc}", file=sys.stderr, flush=True)
        return 2
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness probe otherwise
    runner = Runner(layout, binaries, rate=args.rate, log_level=args.log_level, api_rate=args.api_rate,
                    provider_services=not args.without_provider_services, keep_metrics=args.keep_metrics,
                    kafka_argvs=kafka_argvs)
    return asyncio.run(runner.run(control_socket))


if __name__ == "__main__":
    sys.exit(main())
