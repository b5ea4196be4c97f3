"""A single-node Docker swarm for a two-agent sandbox: Backend.AI's multi-node sessions put their
containers on a per-session overlay network, which needs swarm mode.

The swarm must be on before the manager and the agents start (the manager's overlay plugin and the
agent's docker_gwbridge subnet are read at their start). `up` starts one only where the engine has
none and records that it did; `down` leaves only a swarm it started, and removes the gwbridge network
the swarm made, so the engine is as it was found.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from common.backendai.sandbox.layout import SandboxLayout
from common.backendai.sandbox.processes import SandboxError

GWBRIDGE = "docker_gwbridge"


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def state() -> str:
    """The engine's swarm state: inactive, active, pending, error, locked."""
    return _docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() or "unknown"


def _network_exists(name: str) -> bool:
    return _docker("network", "inspect", name).returncode == 0


def _marker(layout: SandboxLayout) -> Path:
    return layout.run / "swarm.json"


def ensure(layout: SandboxLayout) -> str:
    """Swarm mode on (started here, on 127.0.0.1, unless it already was); what was done, for the user."""
    current = state()
    if current == "active":
        return "Docker swarm: active already (left as it is)"
    if current != "inactive":
        raise SandboxError(f"the Docker engine's swarm is {current}; multi-node sessions need it active "
                           "(docker swarm leave --force, or init it yourself)")
    had_gwbridge = _network_exists(GWBRIDGE)
    started = _docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    if started.returncode != 0:
        raise SandboxError(f"docker swarm init failed: {started.stderr.strip()}")
    _marker(layout).write_text(json.dumps({"had_gwbridge": had_gwbridge}) + "\n")
    return "Docker swarm: started on 127.0.0.1 (for multi-node sessions; down leaves it)"


def leave_if_ours(layout: SandboxLayout) -> bool:
    """Leave the swarm `up` started (and its gwbridge network); True if there was one to leave."""
    marker = _marker(layout)
    if not marker.exists():
        return False
    recorded = json.loads(marker.read_text())
    if state() == "active":
        left = _docker("swarm", "leave", "--force")
        if left.returncode != 0:
            raise SandboxError(f"docker swarm leave failed: {left.stderr.strip()}")
    if not recorded.get("had_gwbridge") and _network_exists(GWBRIDGE):
        _docker("network", "rm", GWBRIDGE)
    marker.unlink()
    return True
