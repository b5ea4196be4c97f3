"""Bring a single-node Backend.AI (23.09, 26.4 or 26.9) up on 127.0.0.1, report on it, take it down.

Order matters: PostgreSQL, redis and etcd first (Debian's, on the host, for every line); then the
storage proxy (the manager asks it for the volumes), the manager, and the agent (it registers with
the manager through etcd and redis). 26.x's three run in the sandbox's service container.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import requests

from common.backendai import client as bai_client
from common.backendai.sandbox import bootstrap, container, install, neighbours, swarm
from common.backendai.sandbox.layout import SandboxLayout, SandboxOptions
from common.backendai.sandbox.processes import (
    SandboxError,
    last_error,
    port_open,
    recorded_pid,
    start_daemon,
    stop_daemon,
    wait_for,
)

DAEMONS = ("redis", "etcd", "storage-proxy", "manager", "agent")
DEFAULT_REGISTRIES = ("127.0.0.1:5000",)
# 26.x scans <registry>/<project>/<name>:<tag> only for projects it has a registry row for.
DEFAULT_PROJECTS = ("mlperf",)


@dataclass(frozen=True)
class ServiceState:
    name: str
    pid: int | None

    @property
    def running(self) -> bool:
        return self.pid is not None


def _postgres_pid(layout: SandboxLayout) -> int | None:
    """PostgreSQL writes its own pid file (postmaster.pid, pid on the first line)."""
    return recorded_pid(layout.pg_data / "postmaster.pid", str(layout.pg_data))


def services(layout: SandboxLayout) -> list[ServiceState]:
    states = [ServiceState("postgres", _postgres_pid(layout))]
    states += [ServiceState(name, recorded_pid(layout.pidfile(name)))
               for name in DAEMONS]
    return states


def recorded_options(layout: SandboxLayout) -> SandboxOptions:
    """The options of the last `up` (the defaults for a sandbox that never recorded any)."""
    try:
        return SandboxOptions(**json.loads(layout.options_file.read_text()))
    except (OSError, ValueError, TypeError):
        return SandboxOptions()


def check_options(layout: SandboxLayout, options: SandboxOptions) -> None:
    if options.agents not in (1, 2):
        raise SandboxError(f"a sandbox runs 1 or 2 agents, not {options.agents}")
    if options.agents > 1 and not layout.line.in_container:
        raise SandboxError(f"Backend.AI {layout.line.release} runs one agent per process; two agents (for "
                           "multi-node sessions) need 25.12 or later: --version 26.4 or 26.9")


def up(layout: SandboxLayout, registries: Sequence[str] = DEFAULT_REGISTRIES,
       progress: Callable[[str], None] = print, projects: Sequence[str] = DEFAULT_PROJECTS,
       options: SandboxOptions | None = None) -> str:
    """Start the sandbox; returns "running" if it already was, "started" otherwise."""
    options = options or SandboxOptions()
    check_line(layout)
    check_options(layout, options)
    states = services(layout)
    if all(state.running for state in states) and manager_answers(layout):
        if recorded_options(layout) != options:
            raise SandboxError(f"sandbox {layout.root} runs with {recorded_options(layout)}, not {options}: "
                               "take it down (invoke bai.sandbox-down) and up again with the new options")
        bootstrap.configure_registries(layout, registries, projects)
        return "running"
    if any(state.running for state in states):
        running = ", ".join(s.name for s in states if s.running)
        stopped = ", ".join(s.name for s in states if not s.running)
        raise SandboxError(f"sandbox {layout.root} is half-started ({running} running; {stopped} not); "
                           f"see {layout.logs}, then `invoke bai.sandbox-down` and up again")
    check_neighbours(layout, progress)
    ensure_docker_engine()
    for host in registries:
        if not port_open(int(host.rsplit(":", 1)[1]), host.rsplit(":", 1)[0]):
            raise SandboxError(f"registry {host} does not answer; the sandbox's agent pulls images from it")
    progress(f"installing Backend.AI {layout.line.release} (Debian packages, its virtualenv)")
    install.ensure_debian_packages()
    scratches = ["scratches", *(f"scratches-{n}" for n in range(1, options.agents))]
    for sub in ("cfg", "logs", "run", "ipc", "var", "vfroot", "redis", "etcd", *scratches):
        (layout.root / sub).mkdir(parents=True, exist_ok=True)
    layout.options_file.write_text(json.dumps(dataclasses.asdict(options)) + "\n")
    layout.root.chmod(0o755)
    session_ids = install.ensure_session_user()
    if layout.line.in_container:
        progress(f"Python {layout.line.python}: Debian {container.SUITE} root filesystem, service container")
        container.ensure_service_container(layout, container.ensure_rootfs_image(layout), session_ids)
    install.ensure_virtualenv(layout)
    layout.volume.mkdir(parents=True, exist_ok=True)
    # Layout version 3; without it the proxy assumes an old (v2) structure and says so.
    (layout.volume / "version.txt").write_text("3\n")
    # The proxy works as the sessions' user once it has bound its ports.
    for path in (layout.root / "ipc", layout.volume, *layout.volume.rglob("*")):
        os.chown(path, *session_ids)
    bootstrap.write_configs(layout, session_ids, options)
    bootstrap.generate_rpc_keys(layout)
    progress("starting PostgreSQL, redis, etcd")
    start_postgres(layout)
    start_redis(layout)
    start_etcd(layout)
    if not layout.marker("populate").exists():
        progress("creating schema, fixtures and etcd configuration")
        bootstrap.populate(layout, registries)
        layout.marker("populate").write_text("done\n")
    bootstrap.configure_registries(layout, registries, projects)
    if options.agents > 1:
        # The manager's overlay plugin and the agent's gwbridge subnet are read at their start.
        progress(swarm.ensure(layout))
    progress("starting storage proxy, manager, agent" + (f"s ({options.agents})" if options.agents > 1 else ""))
    start_backend_ai(layout, "storage-proxy", ["storage", "start-server", "-f",
                                              str(layout.cfg / "storage-proxy.toml")])
    wait_serving(layout, "storage-proxy", lambda: port_open(layout.ports.storage_manager), 60)
    start_backend_ai(layout, "manager", ["mgr", "-f", str(layout.cfg / "manager.toml"), "start-server"])
    wait_serving(layout, "manager", lambda: manager_answers(layout), 300)
    if layout.line.in_container and not layout.marker("membership").exists():
        # 26.x's RBAC checks entity_memberships, which only the API writes (not the fixture's row)
        keys = bootstrap.load_secrets(layout)
        bootstrap.run_logged(layout, "project membership", bootstrap.backend_ai(
            layout, "admin", "group", "add-users", keys["group_uuid"], keys["user_uuid"], client=True))
        layout.marker("membership").write_text("done\n")
    start_agent(layout, options)
    # A daemon can open its port and die a moment later (a worker failing after the bind).
    dead = [state.name for state in services(layout) if not state.running]
    if dead:
        raise SandboxError("exited after starting: " + "; ".join(
            f"{name}: {last_error(layout.log(name))}" for name in dead) + f" (see {layout.logs})")
    return "started"


def check_line(layout: SandboxLayout) -> None:
    """A sandbox folder holds one Backend.AI release; another one needs another folder."""
    marker = layout.marker("install")
    installed = marker.read_text().strip() if marker.exists() else layout.line.release
    if installed != layout.line.release:
        raise SandboxError(f"sandbox {layout.root} holds Backend.AI {installed}, not {layout.line.release}; "
                           "choose another --root (or take it down with --purge first)")


def check_neighbours(layout: SandboxLayout, progress: Callable[[str], None]) -> None:
    """Refuse ports someone else holds, naming the holder; say which other agents this one lives beside."""
    taken = neighbours.port_holders(layout.ports.listening())
    if taken:
        held = "; ".join(f"{name}: {holder}" for name, holder in taken.items())
        raise SandboxError(f"cannot start the sandbox {layout.root} on port base {layout.ports.base}: {held}. "
                           "Stop what holds them or choose another port base (--port-base)")
    config = str(layout.cfg / "agent.toml")
    others = neighbours.agent_processes()
    ours = [agent for agent in others if config in agent.command]
    if ours:
        raise SandboxError(f"an agent started from this sandbox's {config} runs as {ours[0]}, but the "
                           f"sandbox did not record it ({layout.pidfile('agent')}); stop it, then up again")
    if others:
        progress("other Backend.AI agents on this host: " + "; ".join(map(str, others))
                 + f". This sandbox's ports are its own (base {layout.ports.base}), so they coexist")


def start_agent(layout: SandboxLayout, options: SandboxOptions, timeout: float = 240) -> None:
    """Start the agent process and wait until it runs, listens for RPC and the manager lists each of its
    agents ALIVE. An agent can heartbeat before it dies in its own start-up (e.g. on a port another agent
    holds), and the manager's row lags, so ALIVE alone proves nothing."""
    start_backend_ai(layout, "agent", ["ag", "start-server", "-f", str(layout.cfg / "agent.toml")])
    wait_serving(layout, "agent", lambda: port_open(layout.ports.agent_rpc) and agents_alive(layout, options),
                 timeout)


def wait_serving(layout: SandboxLayout, name: str, serving: Callable[[], bool], timeout: float) -> None:
    """Wait until `serving()`, failing at once, with the daemon's error, when its process is gone."""
    log = layout.log(name)

    def ready() -> bool:
        if recorded_pid(layout.pidfile(name)) is None:
            raise SandboxError(f"the {name} exited while starting: {last_error(log)} (see {log})")
        return serving()

    wait_for(ready, timeout, f"the {name} to serve", log)


def ensure_docker_engine() -> None:
    if shutil.which("docker") is None:
        raise SandboxError("the docker CLI is missing; install Debian's docker.io")
    result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True)
    if result.returncode != 0:
        raise SandboxError("no Docker engine answers; start dockerd (the agent runs sessions as containers)")


def start_postgres(layout: SandboxLayout) -> None:
    if not layout.marker("database").exists():
        if layout.pg_data.exists():
            shutil.rmtree(layout.pg_data)
        bootstrap.init_database_cluster(layout)
    options = (f"-c listen_addresses=127.0.0.1 -p {layout.ports.postgres} -k {layout.pg_data.parent} "
               "-c max_connections=200")
    bootstrap.run_logged(layout, "postgres", [
        str(install.postgres_bin() / "pg_ctl"), "-D", str(layout.pg_data), "-l",
        str(layout.pg_data.parent / "postgres.log"), "-w", "-o", options, "start"], user="postgres")
    if not layout.marker("database").exists():
        bootstrap.create_database(layout)
        layout.marker("database").write_text("done\n")


def start_redis(layout: SandboxLayout) -> None:
    start_daemon(["redis-server", "--bind", "127.0.0.1", "--port", str(layout.ports.redis),
                  "--dir", str(layout.root / "redis"), "--save", "", "--appendonly", "no"],
                 pidfile=layout.pidfile("redis"), log=layout.log("redis"), cwd=layout.root)
    wait_serving(layout, "redis", lambda: port_open(layout.ports.redis), 30)


def start_etcd(layout: SandboxLayout) -> None:
    client = f"http://127.0.0.1:{layout.ports.etcd}"
    peer = f"http://127.0.0.1:{layout.ports.etcd_peer}"
    start_daemon(["etcd", "--name", "sandbox", "--data-dir", str(layout.root / "etcd" / "data"),
                  "--listen-client-urls", client, "--advertise-client-urls", client,
                  "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                  "--initial-cluster", f"sandbox={peer}"],
                 pidfile=layout.pidfile("etcd"), log=layout.log("etcd"), cwd=layout.root)
    wait_serving(layout, "etcd", lambda: _etcd_healthy(client), 60)


def _etcd_healthy(client: str) -> bool:
    try:
        return requests.get(f"{client}/health", timeout=1).json().get("health") == "true"
    except (requests.RequestException, ValueError):
        return False


def start_backend_ai(layout: SandboxLayout, name: str, args: Sequence[str]) -> None:
    argv = [str(layout.bin / "backend.ai"), *args]
    if layout.line.in_container:
        container.start_daemon_inside(layout, argv, pidfile=layout.pidfile(name), log=layout.log(name))
    else:
        start_daemon(argv, pidfile=layout.pidfile(name), log=layout.log(name), cwd=layout.cfg)


def manager_answers(layout: SandboxLayout) -> bool:
    try:
        return requests.get(layout.endpoint, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def agents(layout: SandboxLayout) -> list[dict]:
    return bai_client.list_agents(bai_client.api_config(bootstrap.client_environment(layout)))


def agents_alive(layout: SandboxLayout, options: SandboxOptions) -> bool:
    try:
        alive = {a["id"] for a in agents(layout) if a["status"] == "ALIVE"}
    except bai_client.BackendAIError:
        return False
    return set(layout.agent_ids(options.agents)) <= alive


def status(layout: SandboxLayout) -> dict:
    """What runs, the endpoint, the agent's state and resources (no secrets)."""
    report: dict = {"root": str(layout.root), "version": layout.line.release, "endpoint": layout.endpoint,
                    "options": dataclasses.asdict(recorded_options(layout)),
                    "services": {s.name: s.pid for s in services(layout)},
                    "manager": "answering" if manager_answers(layout) else "not answering",
                    "client_env": str(layout.client_env)}
    if report["manager"] == "answering":
        report["agents"] = [{"id": a["id"], "status": _agent_status(layout, a, report["services"]["agent"]),
                             "available": a["available_slots"], "occupied": a["occupied_slots"]}
                            for a in agents(layout)]
    return report


def _agent_status(layout: SandboxLayout, agent: dict, pid: int | None) -> str:
    """The manager's word, unless it is about this sandbox's agent and that process is gone: the
    manager keeps ALIVE until the heartbeat times out."""
    if agent["id"] in layout.agent_ids(2) and pid is None and agent["status"] == "ALIVE":
        return "LOST (its process is gone; the manager has not noticed yet)"
    return agent["status"]


def down(layout: SandboxLayout, remove_data: bool = False, purge: bool = False) -> list[str]:
    """Stop what `up` started (by recorded pid), remove the agent's containers; optionally the data
    (and with `purge` the virtualenv too). Returns the services that were stopped."""
    stopped = [name for name in reversed(DAEMONS)
               if stop_daemon(layout.pidfile(name))]
    if _postgres_pid(layout) is not None:
        bootstrap.run_logged(layout, "postgres stop", [
            str(install.postgres_bin() / "pg_ctl"), "-D", str(layout.pg_data), "-w", "-m", "fast", "stop"],
            user="postgres")
        stopped.append("postgres")
    options = recorded_options(layout)
    remove_agent_containers(layout, options)
    if layout.line.in_container:
        container.remove_service_container(layout)
    swarm.leave_if_ours(layout)
    if purge:
        shutil.rmtree(layout.root, ignore_errors=True)
    elif remove_data:
        for child in layout.root.iterdir():
            if child == layout.venv:
                continue
            if child == layout.run:
                for item in child.iterdir():
                    if item != layout.marker("install"):
                        item.unlink()
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    return stopped


def remove_agent_containers(layout: SandboxLayout, options: SandboxOptions) -> None:
    """Kernel containers carry their agent's id as ai.backend.owner; the relays are named after them."""
    if shutil.which("docker") is None:
        return
    ids: list[str] = []
    relays = {layout.socket_relay_container, *(f"backendai-socket-relay.{agent}"
                                                for agent in layout.agent_ids(options.agents)[1:])}
    for agent in layout.agent_ids(options.agents):
        ids += subprocess.run(["docker", "ps", "-aq", "--filter", f"label=ai.backend.owner={agent}"],
                              capture_output=True, text=True).stdout.split()
    for relay in relays:
        ids += subprocess.run(["docker", "ps", "-aq", "--filter", f"name=^{relay}$"],
                              capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def format_status(report: dict) -> str:
    lines = [f"sandbox: {report['root']} (Backend.AI {report['version']})",
             f"endpoint: {report['endpoint']} ({report['manager']})"]
    lines += [f"  {name:14} {'running, pid ' + str(pid) if pid else 'stopped'}"
              for name, pid in report["services"].items()]
    for agent in report.get("agents", []):
        lines.append(f"agent {agent['id']}: {agent['status']}; available {json.dumps(agent['available'])}; "
                     f"occupied {json.dumps(agent['occupied'])}")
    lines.append(f"client: set -a; . {report['client_env']}; set +a   # exports BACKEND_*")
    return "\n".join(lines)
