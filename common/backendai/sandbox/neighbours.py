"""What else runs on this host and its Docker engine: who holds a port, which other Backend.AI agents run.

A sandbox shares the machine with other sandboxes (a developer's, the test suite's, other Backend.AI
lines) and maybe a real agent. It takes every port from its own base, so it coexists with them; when
something holds one of its ports anyway, the refusal names that process instead of leaving the agent
to die on `bind` later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import psutil

# How Backend.AI's daemons appear in a command line: the CLI (`backend.ai ag start-server`) or the module.
AGENT_MARKERS = (" ag start-server", "ai.backend.agent.server")


@dataclass(frozen=True)
class Process:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} `{self.command}`"


def _process(pid: int | None) -> Process | None:
    if pid is None:
        return None
    try:
        return Process(pid, " ".join(psutil.Process(pid).cmdline()) or psutil.Process(pid).name())
    except psutil.Error:
        return None


def port_holders(ports: Mapping[str, int]) -> dict[str, str]:
    """Service name -> "port N, held by pid P `command`" for each port something listens on."""
    wanted = {port: name for name, port in ports.items()}
    held: dict[str, str] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or conn.laddr.port not in wanted:
            continue
        name = wanted[conn.laddr.port]
        owner = _process(conn.pid)
        held[name] = f"port {conn.laddr.port}, held by {owner or 'a process this user cannot see'}"
    return held


def agent_processes() -> list[Process]:
    """Every Backend.AI agent running on this host (sandboxes' and others', in containers too)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        command = " ".join(proc.info["cmdline"] or ())
        if any(marker in command for marker in AGENT_MARKERS) and "bash -c" not in command:
            found.append(Process(proc.info["pid"], command))
    return found


def listening_ports(pid: int) -> set[int]:
    """TCP ports the process and its children listen on (Backend.AI's daemons fork their workers)."""
    ports: set[int] = set()
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return ports
    for process in family:
        # psutil 6 renamed connections() (Backend.AI 23.09's SDK pins psutil 5.9)
        connections = getattr(process, "net_connections", None) or process.connections
        try:
            ports |= {conn.laddr.port for conn in connections(kind="tcp") if conn.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
    return ports
