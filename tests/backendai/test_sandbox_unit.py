"""Fast checks of the sandbox's generated state, process records and argument parsing."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from common.backendai import client as bai_client
from common.backendai import tasks as bai_tasks
from common.backendai.sandbox import bootstrap, control, neighbours
from common.backendai.sandbox.layout import SandboxLayout, SandboxPorts
from common.backendai.sandbox.processes import SandboxError, recorded_pid, start_daemon, stop_daemon

WELL_KNOWN = {2379, 2380, 5000, 5432, 6001, 6007, 6021, 6022, 6379, 8080, 8081}


def test_ports_are_distinct_and_away_from_the_services_usual_ports() -> None:
    ports = SandboxPorts()
    used = [*ports.listening().values(), *ports.monitors.values()]
    assert len(used) == len(set(used))
    assert not WELL_KNOWN & set(used)
    other = SandboxPorts(28000)
    assert not set(used) & {*other.listening().values(), *other.monitors.values()}


def test_configs_render_completely_into_private_files(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path, SandboxPorts(23000))
    bootstrap.write_configs(layout)
    for name in (*bootstrap.CONFIG_FILES, "client.env", "secrets.json"):
        path = layout.cfg / name
        assert "${" not in path.read_text(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert 'port = 23081' in (layout.cfg / "manager.toml").read_text()
    assert f'id = "{layout.agent_id}"' in (layout.cfg / "agent.toml").read_text()
    env = dict(line.split("=", 1) for line in layout.client_env.read_text().splitlines())
    assert env["BACKEND_ENDPOINT"] == "http://127.0.0.1:23081"


def test_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path)
    first = bootstrap.load_secrets(layout)
    assert first == bootstrap.load_secrets(layout)
    assert first != bootstrap.load_secrets(SandboxLayout(tmp_path / "other"))
    assert first["access_key"].startswith("AKIA") and len(first["access_key"]) == 20


def test_fixtures_link_the_keypair_to_its_user_and_have_no_empty_table() -> None:
    keys = {"access_key": "AKIAXXXXXXXXXXXXXXXX", "secret_key": "s", "admin_password": "p",
            "user_uuid": "u", "group_uuid": "g"}
    data = bootstrap.fixtures(keys, ["127.0.0.1:5000"])
    assert all(data.values()), "populate_fixture stops at the first empty list"
    assert data["keypairs"][0]["user"] == keys["user_uuid"]
    assert bootstrap.main_access_key_fixture(keys)["users"] == [
        {"uuid": "u", "main_access_key": "AKIAXXXXXXXXXXXXXXXX"}]
    for table in ("domains", "groups", "keypair_resource_policies"):
        assert bootstrap.STORAGE_HOST in data[table][0]["allowed_vfolder_hosts"]


def test_daemon_is_recorded_and_stopped_by_its_own_pid(tmp_path: Path) -> None:
    pidfile = tmp_path / "sleeper.pid"
    pid = start_daemon(["sleep", "60"], pidfile=pidfile, log=tmp_path / "sleeper.log", cwd=tmp_path)
    assert recorded_pid(pidfile) == pid
    assert stop_daemon(pidfile, timeout=5)
    assert recorded_pid(pidfile) is None and not pidfile.exists()
    assert not stop_daemon(pidfile)


def test_a_recycled_pid_is_not_taken_for_ours(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        pidfile = tmp_path / "stale.pid"
        pidfile.write_text(f"{other.pid} 1\n")
        assert recorded_pid(pidfile) is None
        assert not stop_daemon(pidfile)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("service", ["manager", "agent (metadata server)"])
def test_up_refuses_a_taken_port_and_names_its_holder(tmp_path: Path, service: str) -> None:
    """The metadata server's port too: Backend.AI's default (40128) is one port for every agent."""
    layout = SandboxLayout(tmp_path, SandboxPorts(24000))
    port = layout.ports.listening()[service]
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", port))
        holder.listen()
        with pytest.raises(SandboxError, match=rf"{re.escape(service)}: port {port}, held by pid {os.getpid()} `"):
            control.up(layout, progress=lambda _: None)


def test_agent_ports_derive_from_the_port_base(tmp_path: Path) -> None:
    agent_toml = {}
    for base in (23000, 33000):
        layout = SandboxLayout(tmp_path / str(base), SandboxPorts(base))
        bootstrap.write_configs(layout)
        agent_toml[base] = tomllib.loads((layout.cfg / "agent.toml").read_text())["agent"]
    assert agent_toml[23000]["metadata-server-port"] == 23128
    assert agent_toml[33000]["metadata-server-port"] == 33128
    assert agent_toml[23000]["metadata-server-bind-host"] == "127.0.0.1"
    assert {agent_toml[23000]["agent-sock-port"], agent_toml[23000]["rpc-listen-addr"]["port"]} == {23007, 23001}


def test_an_unrecorded_agent_of_this_sandbox_is_refused_by_name(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path, SandboxPorts(26000))
    bootstrap.write_configs(layout)
    script = "import time; time.sleep(60)"
    impostor = subprocess.Popen([sys.executable, "-c", script, "ag", "start-server", "-f",
                                 str(layout.cfg / "agent.toml")])
    try:
        wait = time.monotonic() + 10
        while time.monotonic() < wait and not any(a.pid == impostor.pid for a in neighbours.agent_processes()):
            time.sleep(0.1)
        with pytest.raises(SandboxError, match=rf"runs as pid {impostor.pid} .*did not record it"):
            control.up(layout, progress=lambda _: None)
    finally:
        impostor.kill()
        impostor.wait()


def test_up_reports_a_half_started_sandbox(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path, SandboxPorts(25000))
    layout.run.mkdir(parents=True)
    start_daemon(["sleep", "60"], pidfile=layout.pidfile("redis"), log=tmp_path / "redis.log", cwd=tmp_path)
    try:
        with pytest.raises(SandboxError, match=r"half-started \(redis running; postgres, etcd"):
            control.up(layout, progress=lambda _: None)
    finally:
        assert "redis" in control.down(layout)
    assert not any(state.running for state in control.services(layout))


def test_client_refuses_to_guess_a_cluster() -> None:
    with pytest.raises(bai_client.ConfigurationError, match="BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY"):
        bai_client.api_config({"BACKEND_ENDPOINT": "http://127.0.0.1:1"})


def test_unreachable_manager_is_a_configuration_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = bai_client.api_config({"BACKEND_ENDPOINT": f"http://127.0.0.1:{port}",
                                    "BACKEND_ACCESS_KEY": "AKIAXXXXXXXXXXXXXXXX", "BACKEND_SECRET_KEY": "x"})
    start = time.monotonic()
    with pytest.raises(bai_client.ConfigurationError, match=f"cannot reach Backend.AI at .*:{port}"):
        bai_client.list_agents(config)
    assert time.monotonic() - start < 30


def test_run_arguments_parse_into_a_job_spec() -> None:
    assert bai_tasks.parse_resources("cpu=2,mem=4g,cuda.device=1") == {
        "cpu": "2", "mem": "4g", "cuda.device": "1"}
    assert bai_tasks.parse_mounts(["data", "coco:/data/coco"]) == {"data": None, "coco": "/data/coco"}
    with pytest.raises(ValueError, match="--resources 'mem'"):
        bai_tasks.parse_resources("cpu=1,mem")
    with pytest.raises(ValueError, match="FOLDER or FOLDER:PATH"):
        bai_tasks.parse_mounts([":/x"])
