"""Fast checks of the sandbox's generated state, process records and argument parsing."""

from __future__ import annotations

import os
import re
import shutil
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
from common.backendai.sandbox import bootstrap, cache, control, fixtures, neighbours
from common.backendai.sandbox.layout import STORAGE_HOST, SandboxLayout, SandboxPorts
from common.backendai.sandbox.lines import LINES, line_of
from common.backendai.sandbox.processes import SandboxError, recorded_pid, start_daemon, stop_daemon
from tests.ports import free_port, free_sandbox_ports

WELL_KNOWN = {2379, 2380, 5000, 5432, 6001, 6007, 6021, 6022, 6379, 8080, 8081}


def test_ports_are_distinct_and_away_from_the_services_usual_ports() -> None:
    ports = SandboxPorts()
    used = [*ports.listening().values(), *ports.monitors.values()]
    assert len(used) == len(set(used))
    assert not WELL_KNOWN & set(used)
    other = SandboxPorts(28000)
    assert not set(used) & {*other.listening().values(), *other.monitors.values()}


@pytest.mark.parametrize("line", sorted(LINES))
def test_configs_render_completely_into_private_files(tmp_path: Path, line: str) -> None:
    layout = SandboxLayout(tmp_path, SandboxPorts(23000), LINES[line])
    bootstrap.write_configs(layout)
    for name in (*bootstrap.CONFIG_FILES, bootstrap.MOCK_ACCELERATOR, "client.env", "secrets.json"):
        path = layout.cfg / name
        assert "${" not in path.read_text(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    manager = tomllib.loads((layout.cfg / "manager.toml").read_text())["manager"]
    assert manager["service-addr"]["port"] == 23081
    assert tomllib.loads((layout.cfg / "agent.toml").read_text())["agent"]["id"] == layout.agent_id
    env = dict(line.split("=", 1) for line in layout.client_env.read_text().splitlines())
    assert env["BACKEND_ENDPOINT"] == "http://127.0.0.1:23081"


def test_26_configs_put_every_new_address_on_the_port_base(tmp_path: Path) -> None:
    """26.x added internal addresses whose defaults (18080, 6003, 16023) would meet another sandbox."""
    layout = SandboxLayout(tmp_path, SandboxPorts(23000), LINES["26.9"])
    bootstrap.write_configs(layout)
    config = {name: tomllib.loads((layout.cfg / f"{name}.toml").read_text())
              for name in ("manager", "agent", "storage-proxy")}
    ports = [config["manager"]["manager"]["internal-addr"]["port"],
             config["agent"]["agent"]["service-addr"]["port"],
             config["storage-proxy"]["api"]["manager"]["internal-addr"]["port"]]
    assert ports == [23080, 23003, 23025]
    assert set(ports) <= set(layout.ports.listening().values())


def test_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path)
    first = bootstrap.load_secrets(layout)
    assert first == bootstrap.load_secrets(layout)
    assert first != bootstrap.load_secrets(SandboxLayout(tmp_path / "other"))
    assert first["access_key"].startswith("AKIA") and len(first["access_key"]) == 20


KEYS = {"access_key": "AKIAXXXXXXXXXXXXXXXX", "secret_key": "s", "admin_password": "p",
        "user_uuid": "3f1f0d6e-8d7b-4a64-a8d5-0c2b1a9b2f10", "group_uuid": "0c4e9c8e-1b3a-4d8e-9f6a-2d5b7e1c3a90"}


@pytest.mark.parametrize("build", [fixtures.fixtures_2309, fixtures.fixtures_2604, fixtures.fixtures_26])
def test_fixtures_link_the_keypair_to_its_user_and_allow_cluster_sessions(build) -> None:
    data = build(KEYS, ["127.0.0.1:5000"])
    assert all(data.values()), "23.09's populate_fixture stops at the first empty list"
    assert data["keypairs"][0]["user"] == KEYS["user_uuid"]
    for table in ("domains", "groups", "keypair_resource_policies"):
        assert STORAGE_HOST in data[table][0]["allowed_vfolder_hosts"]
    [policy] = data["keypair_resource_policies"]
    assert policy["max_containers_per_session"] >= 2 and policy["max_concurrent_sessions"] >= 4
    assert data["domains"][0]["allowed_docker_registries"] == ["127.0.0.1:5000"]


def test_23_09_users_are_found_by_their_main_access_key() -> None:
    assert fixtures.main_access_key_fixture(KEYS)["users"] == [
        {"uuid": KEYS["user_uuid"], "main_access_key": KEYS["access_key"]}]


def test_26_fixtures_give_the_user_a_personal_project_and_the_mock_gpu_slots() -> None:
    """A user's own virtual folders live in the personal project it created (26.x)."""
    data = fixtures.fixtures_26(KEYS, ["127.0.0.1:5000"])
    personal = [group for group in data["groups"] if group["type"] == "personal"]
    assert [group["creator_id"] for group in personal] == [KEYS["user_uuid"]]
    assert {"cuda.device", "cuda.shares"} <= {slot["slot_name"] for slot in data["resource_slot_types"]}


def test_26_registry_rows_are_one_per_registry_and_project_with_stable_ids() -> None:
    rows = fixtures.registry_rows(["127.0.0.1:5000"], ["mlperf", "me"])["container_registries"]
    assert [(row["registry_name"], row["project"], row["url"]) for row in rows] == [
        ("127.0.0.1:5000", "mlperf", "http://127.0.0.1:5000"), ("127.0.0.1:5000", "me", "http://127.0.0.1:5000")]
    again = fixtures.registry_rows(["127.0.0.1:5000"], ["me"])["container_registries"]
    assert again[0]["id"] == rows[1]["id"], "a later up finds the same row (insert ... on conflict do nothing)"


def test_registries_live_in_etcd_for_23_09_only(tmp_path: Path) -> None:
    old = fixtures.etcd_config(SandboxLayout(tmp_path, line=LINES["23.09"]), ["127.0.0.1:5000"])
    new = fixtures.etcd_config(SandboxLayout(tmp_path, line=LINES["26.9"]), ["127.0.0.1:5000"])
    assert old["docker"]["registry"]["127.0.0.1:5000"][""] == "http://127.0.0.1:5000"
    assert "registry" not in new["docker"]


def test_versions_name_a_line() -> None:
    assert line_of("26.9") is line_of("26.9.6") is LINES["26.9"]
    assert line_of("23.9") is LINES["23.09"]
    with pytest.raises(ValueError, match=r"brings up 23\.09, 26\.9, 26\.4"):
        line_of("24.03")


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


@pytest.fixture
def no_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `up` tests here must stop at a check: were one to pass it, `up` would start dockerd, run apt-get
    and create a system user as root. Each of those steps fails the test instead."""
    def refuse(step: str):
        def installing(*_args: object, **_kwargs: object) -> None:
            pytest.fail(f"control.up went on to {step}: the check under test let it through")
        return installing
    monkeypatch.setattr(control, "ensure_docker_engine", refuse("start the Docker engine"))
    monkeypatch.setattr(control.install, "ensure_debian_packages", refuse("install Debian packages"))
    monkeypatch.setattr(control.install, "ensure_session_user", refuse("create the sessions' user"))
    monkeypatch.setattr(control.install, "ensure_virtualenv", refuse("install Backend.AI"))


@pytest.mark.parametrize("service", ["manager", "agent (metadata server)"])
def test_up_refuses_a_taken_port_and_names_its_holder(tmp_path: Path, service: str, no_install: None) -> None:
    """The metadata server's port too: Backend.AI's default (40128) is one port for every agent."""
    layout = SandboxLayout(tmp_path, free_sandbox_ports())
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


def test_an_unrecorded_agent_of_this_sandbox_is_refused_by_name(tmp_path: Path, no_install: None) -> None:
    layout = SandboxLayout(tmp_path, free_sandbox_ports())
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


def test_up_reports_a_half_started_sandbox(tmp_path: Path, no_install: None) -> None:
    layout = SandboxLayout(tmp_path, free_sandbox_ports())
    layout.run.mkdir(parents=True)
    start_daemon(["sleep", "60"], pidfile=layout.pidfile("redis"), log=tmp_path / "redis.log", cwd=tmp_path)
    try:
        with pytest.raises(SandboxError, match=r"half-started \(redis running; postgres, etcd"):
            control.up(layout, progress=lambda _: None)
    finally:
        assert "redis" in control.down(layout)
    assert not any(state.running for state in control.services(layout))


DYING_DAEMON = """#!/bin/sh
echo "*** FATAL CONFIG FILE ERROR (made up by the test) ***"
echo "Error: the $(basename "$0") of this test exits at once"
exit 1
"""


@pytest.mark.parametrize(("daemon", "start"), [("redis-server", control.start_redis), ("etcd", control.start_etcd)])
def test_a_daemon_that_dies_while_starting_fails_up_at_once_with_its_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, daemon: str, start) -> None:
    """Not after the wait's 30-60 s, and with the line of the daemon's log that says why."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / daemon).write_text(DYING_DAEMON)
    (bin_dir / daemon).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    layout = SandboxLayout(tmp_path / "sandbox", free_sandbox_ports())
    layout.run.mkdir(parents=True)
    name = daemon.removesuffix("-server")
    with pytest.raises(SandboxError, match=rf"the {name} exited while starting: Error: the {daemon} of this test "
                                            rf"exits at once \(see {re.escape(str(layout.log(name)))}\)"):
        start(layout)
    assert recorded_pid(layout.pidfile(name)) is None


def test_client_refuses_to_guess_a_cluster() -> None:
    with pytest.raises(bai_client.ConfigurationError, match="BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY"):
        bai_client.api_config({"BACKEND_ENDPOINT": "http://127.0.0.1:1"})


@pytest.mark.timeout(30)  # no retrying for minutes: a refused connection is the answer
def test_unreachable_manager_is_a_configuration_error() -> None:
    port = free_port()
    config = bai_client.api_config({"BACKEND_ENDPOINT": f"http://127.0.0.1:{port}",
                                    "BACKEND_ACCESS_KEY": "AKIAXXXXXXXXXXXXXXXX", "BACKEND_SECRET_KEY": "x"})
    with pytest.raises(bai_client.ConfigurationError, match=f"cannot reach Backend.AI at .*:{port}"):
        bai_client.list_agents(config)


def test_run_arguments_parse_into_a_job_spec() -> None:
    assert bai_tasks.parse_resources("cpu=2,mem=4g,cuda.device=1") == {
        "cpu": "2", "mem": "4g", "cuda.device": "1"}
    assert bai_tasks.parse_mounts(["data", "coco:/data/coco:ro", "w:ro"]) == (
        {"data": None, "coco": "/data/coco", "w": None}, {"coco", "w"})
    with pytest.raises(ValueError, match="--resources 'mem'"):
        bai_tasks.parse_resources("cpu=1,mem")
    for wrong in (":/x", "data:/x:rx"):
        with pytest.raises(ValueError, match=r"FOLDER\[:PATH\]\[:ro\]"):
            bai_tasks.parse_mounts([wrong])


def test_virtualenvs_are_cached_by_line_constraints_and_folder(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """CI starts from nothing: a cached virtualenv replaces pip, but only for the same line,
    constraints and sandbox folder (a virtualenv holds its own absolute path)."""
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    layout = SandboxLayout(tmp_path / "a", line=LINES["26.9"])
    (layout.bin).mkdir(parents=True)
    (layout.bin / "python").write_text("#!/bin/sh\n")
    cache.save_venv(layout)
    shutil.rmtree(layout.venv)
    assert cache.restore_venv(layout) and (layout.bin / "python").read_text() == "#!/bin/sh\n"
    assert not cache.restore_venv(SandboxLayout(tmp_path / "b", line=LINES["26.9"]))
    assert not cache.restore_venv(SandboxLayout(tmp_path / "a", line=LINES["26.4"]))
    monkeypatch.delenv(cache.CACHE_ENV)
    assert not cache.restore_venv(layout), "no cache unless asked for"
