"""Ports chosen when a test runs, among those free at that moment, instead of numbers fixed in the tests
(another checkout's tests, a developer's sandbox or any other program may hold a fixed one)."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable

from common.backendai.sandbox.layout import SandboxPorts
from tests.harness.system import free_port

__all__ = ["free_port", "free_sandbox_ports"]


def _all_free(ports: Iterable[int]) -> bool:
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


def free_sandbox_ports(tries: int = 50) -> SandboxPorts:
    """A sandbox port base whose every listening port is free now (bases below the ephemeral range)."""
    bases = random.sample(range(20000, 31000, 200), tries)
    for base in bases:
        ports = SandboxPorts(base)
        if _all_free([*ports.listening().values(), *ports.monitors.values()]):
            return ports
    raise RuntimeError(f"no sandbox port base with its ports free among {sorted(bases)}")
