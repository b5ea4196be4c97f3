"""Where a sandbox keeps its files and which ports it listens on.

All ports derive from one base so that two sandboxes (a user's and the test suite's) never meet, and
none of them is a service's usual port (5432, 6379, 2379, 8080, 40128 ...) that something else may hold.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from common.backendai.sandbox.lines import DEFAULT_LINE, LINES, Line

DEFAULT_PORT_BASE = 18000
STORAGE_HOST = "local:volume1"
# The system user sessions and the storage proxy run as (common/backendai/sandbox/install.py).
SESSION_USER = "bai-sandbox"


@dataclass(frozen=True)
class SandboxPorts:
    """The TCP ports of one sandbox, all on 127.0.0.1."""

    base: int = DEFAULT_PORT_BASE

    @property
    def manager(self) -> int:
        return self.base + 81

    @property
    def manager_internal(self) -> int:
        """26.x: the manager's internal API (agents, storage proxy)."""
        return self.base + 80

    @property
    def postgres(self) -> int:
        return self.base + 32

    @property
    def redis(self) -> int:
        return self.base + 79

    @property
    def etcd(self) -> int:
        return self.base + 23

    @property
    def etcd_peer(self) -> int:
        return self.base + 24

    @property
    def storage_client(self) -> int:
        return self.base + 21

    @property
    def storage_manager(self) -> int:
        return self.base + 22

    @property
    def storage_internal(self) -> int:
        """26.x: the storage proxy's internal API."""
        return self.base + 25

    @property
    def agent_rpc(self) -> int:
        return self.base + 1

    @property
    def agent_sock(self) -> int:
        return self.base + 7

    @property
    def agent_service(self) -> int:
        """26.x: the agent's internal HTTP service."""
        return self.base + 3

    @property
    def metadata_server(self) -> int:
        """The agent's metadata server for its containers (Backend.AI's default, 40128, is one fixed
        port for every agent on a host: a second agent dies binding it)."""
        return self.base + 128

    @property
    def monitors(self) -> dict[str, int]:
        """aiomonitor consoles each daemon opens (Backend.AI's defaults would clash between sandboxes)."""
        return {"manager_monitor_port": self.base + 100, "manager_monitor_web_port": self.base + 101,
                "agent_monitor_port": self.base + 110, "agent_monitor_web_port": self.base + 111,
                "storage_monitor_port": self.base + 120, "storage_monitor_web_port": self.base + 121}

    @property
    def container_range(self) -> tuple[int, int]:
        return self.base + 1000, self.base + 1999

    def listening(self) -> dict[str, int]:
        """Service name -> port, for the checks before start and for status (every line's: a
        sandbox reserves them all)."""
        return {"postgres": self.postgres, "redis": self.redis, "etcd": self.etcd,
                "etcd-peer": self.etcd_peer, "storage-proxy (client)": self.storage_client,
                "storage-proxy (manager)": self.storage_manager,
                "storage-proxy (internal)": self.storage_internal, "manager": self.manager,
                "manager (internal)": self.manager_internal, "agent (rpc)": self.agent_rpc,
                "agent (socket)": self.agent_sock, "agent (service)": self.agent_service,
                "agent (metadata server)": self.metadata_server}

    @property
    def span(self) -> range:
        """Every port the sandbox may bind: its services, their consoles, its containers' ports."""
        return range(self.base, self.container_range[1] + 1)


@dataclass(frozen=True)
class SandboxOptions:
    """How a sandbox is shaped beyond its line and ports; `up` records them for `status` and `down`."""

    # 2: a second agent in the same agent process (26.x's [[agents]]), both reporting the whole machine,
    # over a single-node Docker swarm: multi-node sessions place their containers on different agents.
    agents: int = 1
    # What an agent keeps of a container's log (its [container-logs] max-length; Backend.AI's default 10M).
    log_cap: str | None = None


@dataclass(frozen=True)
class SandboxLayout:
    """The sandbox folder: its own virtualenv, configs, data and logs."""

    root: Path
    ports: SandboxPorts = SandboxPorts()
    line: Line = field(default_factory=lambda: LINES[DEFAULT_LINE])

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def cfg(self) -> Path:
        return self.root / "cfg"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def pg_data(self) -> Path:
        return self.root / "pg" / "data"

    @property
    def volume(self) -> Path:
        return self.root / "vfs" / "volume1"

    @property
    def client_env(self) -> Path:
        """BACKEND_* variables for the client (mode 0600; holds the secret key)."""
        return self.cfg / "client.env"

    @property
    def secrets(self) -> Path:
        return self.cfg / "secrets.json"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports.manager}"

    @property
    def agent_id(self) -> str:
        return f"i-sandbox-{self.ports.base}"

    def agent_ids(self, agents: int = 1) -> list[str]:
        """The first agent's id, then the second's (`i-sandbox-<base>b`)."""
        return [self.agent_id, *(f"{self.agent_id}{chr(ord('a') + n)}" for n in range(1, agents))]

    @property
    def options_file(self) -> Path:
        return self.run / "options.json"

    @property
    def site_packages(self) -> Path:
        return self.venv / "lib" / f"python{self.line.python}" / "site-packages"

    @property
    def socket_relay_container(self) -> str:
        """23.09's agent names its relay container after the md5 of its own agent.py path
        (agent/utils.py); 26.x's after its agent id."""
        if self.line.in_container:
            return f"backendai-socket-relay.{self.agent_id}"
        agent_py = self.site_packages / "ai" / "backend" / "agent" / "agent.py"
        return f"backendai-socket-relay.{hashlib.md5(str(agent_py).encode()).hexdigest()[:12]}"

    @property
    def service_container(self) -> str:
        """26.x: the container the manager, agent and storage proxy run in (Python 3.13)."""
        return f"mlperf-bai-sandbox.{self.agent_id}"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pidfile(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def marker(self, step: str) -> Path:
        """Present once a one-time step (install, database init, bootstrap) has completed."""
        return self.run / f"{step}.done"
