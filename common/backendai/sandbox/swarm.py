"""A single-node Docker swarm for a two-agent sandbox: Backend.AI's multi-node sessions put their
containers on a per-session overlay network, which needs swarm mode.

The swarm must be on before the manager and the agents start (the manager's overlay plugin and the
agent's docker_gwbridge subnet are read at their start). `up` starts one only where the engine has
none; sandboxes that run at once share it, and the last of them to go `down` leaves it (and removes
the gwbridge network the swarm made), so the engine is as it was found. A swarm that was there
before any sandbox is never left.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from common.backendai.sandbox.layout import SandboxLayout
from common.backendai.sandbox.machine import MACHINE_LOCK
from common.backendai.sandbox.processes import SandboxError

GWBRIDGE = "docker_gwbridge"
# The swarm a sandbox started: whether the gwbridge network was there before it, and the sandboxes using it.
USERS = Path(tempfile.gettempdir()) / "mlperf-bai-sandbox-swarm.json"


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def state() -> str:
    """The engine's swarm state: inactive, active, pending, error, locked."""
    return _docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() or "unknown"


def _network_exists(name: str) -> bool:
    return _docker("network", "inspect", name).returncode == 0


def _users() -> dict | None:
    return json.loads(USERS.read_text()) if USERS.exists() else None


def _write_users(record: dict) -> None:
    tmp = USERS.with_suffix(".tmp")
    tmp.write_text(json.dumps(record) + "\n")
    tmp.replace(USERS)


def ensure(layout: SandboxLayout) -> str:
    """Swarm mode on (started here, on 127.0.0.1, unless it already was); what was done, for the user."""
    with MACHINE_LOCK:
        current = state()
        record = _users()
        if current == "active":
            if record is None:
                return "Docker swarm: active already (left as it is)"
            _write_users({**record, "users": sorted({*record["users"], str(layout.root)})})
            return "Docker swarm: active already, started by another sandbox (the last one down leaves it)"
        if current != "inactive":
            raise SandboxError(f"the Docker engine's swarm is {current}; multi-node sessions need it active "
                               "(docker swarm leave --force, or init it yourself)")
        had_gwbridge = _network_exists(GWBRIDGE)
        started = _docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        if started.returncode != 0:
            raise SandboxError(f"docker swarm init failed: {started.stderr.strip()}")
        _write_users({"had_gwbridge": had_gwbridge, "users": [str(layout.root)]})
        return "Docker swarm: started on 127.0.0.1 (for multi-node sessions; down leaves it)"


def leave_if_ours(layout: SandboxLayout) -> bool:
    """Leave the swarm a sandbox started (and its gwbridge network) once no sandbox uses it; True if left."""
    with MACHINE_LOCK:
        record = _users()
        if record is None or str(layout.root) not in record["users"]:
            return False
        users = [root for root in record["users"] if root != str(layout.root)]
        if users:
            _write_users({**record, "users": users})
            return False
        if state() == "active":
            left = _docker("swarm", "leave", "--force")
            if left.returncode != 0:
                raise SandboxError(f"docker swarm leave failed: {left.stderr.strip()}")
        if not record.get("had_gwbridge") and _network_exists(GWBRIDGE):
            _docker("network", "rm", GWBRIDGE)
        USERS.unlink()
        return True
