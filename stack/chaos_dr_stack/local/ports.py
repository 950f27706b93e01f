"""Port helpers shared by the local runner, the services and the tests.

A stack takes one base port and a fixed span above it (see docs/local-stack-contract.md), so two stacks
can run side by side as long as their spans do not overlap.
"""
from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable

STACK_PORT_SPAN = 40
"""Ports B .. B+39 belong to one stack instance."""


class PortInUse(RuntimeError):
    """A port the stack needs is already bound by another process."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def busy_ports(base_port: int, span: int = STACK_PORT_SPAN, host: str = "127.0.0.1") -> list[int]:
    return [p for p in range(base_port, base_port + span) if not port_is_free(p, host)]


def free_base_port(span: int = STACK_PORT_SPAN, low: int = 20000, high: int = 32768, attempts: int = 200) -> int:
    """A base port whose whole span is free now. Random, so parallel test sessions rarely collide. Kept below
    32768, where Linux starts handing out ports for outgoing connections, so a restarting child never finds its
    port taken by some client's ephemeral socket."""
    for _ in range(attempts):
        base = random.randrange(low, high - span)
        if not busy_ports(base, span):
            return base
    raise PortInUse(f"no free span of {span} ports found between {low} and {high}")


def tcp_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``check`` until it returns True or ``timeout`` seconds pass. Returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
