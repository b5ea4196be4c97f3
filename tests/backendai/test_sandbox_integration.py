"""A real single-node Backend.AI: up, register the project's image, batch sessions, vfolders, down."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
import requests

from common.backendai import client as bai_client
from common.backendai import register as bai_register
from common.backendai.sandbox import bootstrap, control, neighbours
from common.backendai.sandbox.layout import SandboxLayout
from common.backendai.sandbox.processes import port_open, recorded_pid
from common.registry.manifests import DOCKER_LIST

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.docker, pytest.mark.registry]
REPO = Path(__file__).resolve().parents[2]
DEFAULT_METADATA_PORT = 40128  # Backend.AI's default for every agent's metadata server
PYTHON_JOB = ("python3 -c 'import sys; print(\"to-stdout\", 6 * 7); "
              "print(\"to-stderr\", file=sys.stderr); sys.exit({code})'")


def test_second_up_finds_it_running(sandbox: SandboxLayout, registry_host: str) -> None:
    start = time.monotonic()
    assert control.up(sandbox, [registry_host]) == "running"
    assert time.monotonic() - start < 10


def test_status_reports_the_alive_agent_and_its_resources(sandbox: SandboxLayout) -> None:
    report = control.status(sandbox)
    assert all(report["services"].values()), report["services"]
    [agent] = report["agents"]
    assert agent["id"] == sandbox.agent_id and agent["status"] == "ALIVE"
    assert float(agent["available"]["cpu"]) >= 1
    text = control.format_status(report)
    assert str(sandbox.client_env) in text
    assert bootstrap.load_secrets(sandbox)["secret_key"] not in text


def test_batch_exit_zero_returns_stdout_and_stderr(batch_image: str, client_config) -> None:
    result = bai_client.run_batch(bai_client.BatchJob(image=batch_image, command=PYTHON_JOB.format(code=0)),
                                  config=client_config)
    assert result.succeeded and result.exit_code == 0 and result.status == "SUCCESS"
    assert "to-stdout 42" in result.logs and "to-stderr" in result.logs


def test_run_task_exits_with_the_session_exit_code(batch_image: str, sandbox: SandboxLayout) -> None:
    env = {**os.environ, **bootstrap.client_environment(sandbox)}
    done = subprocess.run([sys.executable, "-m", "invoke", "bai.run", batch_image, "--command",
                           PYTHON_JOB.format(code=7), "--resources", "cpu=1,mem=2g"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 7, done.stderr
    assert "to-stdout 42" in done.stdout
    assert "FAILURE, exit code 7" in done.stderr


def test_session_reads_and_writes_a_mounted_vfolder(batch_image: str, client_config, tmp_path: Path) -> None:
    folder = f"data{int(time.time())}"
    (tmp_path / "numbers.txt").write_text("3 4 5\n")
    bai_client.ensure_vfolder(folder, config=client_config)
    try:
        bai_client.upload(folder, ["numbers.txt"], basedir=tmp_path, config=client_config)
        command = ("python3 -c 'import pathlib; d = pathlib.Path(\"/data/in\"); "
                   "s = sum(map(int, (d / \"numbers.txt\").read_text().split())); "
                   "(d / \"sum.txt\").write_text(str(s)); print(\"sum\", s)'")
        result = bai_client.run_batch(bai_client.BatchJob(image=batch_image, command=command,
                                                          mounts={folder: "/data/in"}),
                                      config=client_config)
        assert result.exit_code == 0, result.logs
        assert "sum 12" in result.logs
        [downloaded] = bai_client.download(folder, ["sum.txt"], tmp_path / "out", config=client_config)
        assert downloaded.read_text() == "12"
        with pytest.raises(bai_client.BackendAIError, match=r"has no file missing\.txt"):
            bai_client.download(folder, ["missing.txt"], tmp_path / "out", config=client_config)
    finally:
        bai_client.delete_vfolder(folder, config=client_config)


def test_request_below_the_image_minimum_is_refused(batch_image: str, client_config) -> None:
    job = bai_client.BatchJob(image=batch_image, command="true", resources={"cpu": 1, "mem": "256m"})
    with pytest.raises(bai_client.RequestRejectedError, match="smaller than the minimum"):
        bai_client.run_batch(job, config=client_config)


def test_unknown_image_is_refused_with_a_hint(registry_host: str, client_config) -> None:
    job = bai_client.BatchJob(image=f"{registry_host}/mlperf-bai-test/never-pushed:1.0", command="true")
    with pytest.raises(bai_client.RequestRejectedError, match=r"bai\.register"):
        bai_client.run_batch(job, config=client_config)


def test_unregistrable_image_is_reported(sandbox: SandboxLayout, unlabelled_image: str,
                                         client_config) -> None:
    """The base image has no Backend.AI labels: the manager scans it and skips it."""
    with pytest.raises(bai_client.ImageNotRegisteredError, match="did not register"):
        bai_register.register(unlabelled_image, config=client_config)


def test_image_converted_in_the_registry_runs(sandbox: SandboxLayout, unlabelled_image: str,
                                              client_config) -> None:
    """images.relabel writes the labels into the registry copy (no Docker build); bai.register
    wraps and rescans it; a batch session runs in it."""
    converted = f"{unlabelled_image}-bai"
    env = {**os.environ, **bootstrap.client_environment(sandbox)}
    for argv in (["images.relabel", unlabelled_image, "--to", converted, "--profile", "cpu", "--insecure"],
                 ["bai.register", converted]):
        done = subprocess.run([sys.executable, "-m", "invoke", *argv], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert f"registered {converted}" in done.stdout
    result = bai_client.run_batch(bai_client.BatchJob(image=converted, command=PYTHON_JOB.format(code=0)),
                                  config=client_config)
    assert result.exit_code == 0 and "to-stdout 42" in result.logs, result.logs


def test_session_that_cannot_start_is_reported(batch_image: str, registry_host: str,
                                               client_config) -> None:
    """Registered, then gone from the registry and the engine: the agent's pull fails. (An image
    of its own: deleting a manifest by digest removes every tag that shares it.)"""
    gone = batch_image.rsplit(":", 1)[0] + ":3.11-gone"
    engine = docker.from_env()
    dockerfile = f"FROM {batch_image}\nLABEL org.opencontainers.image.title=start-failure\n"
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=gone, rm=True)
    for line in engine.images.push(gone, stream=True, decode=True):
        assert "error" not in line, line
    bai_register.register(gone, config=client_config)
    repository = gone.split("/", 1)[1].rsplit(":", 1)[0]
    manifest = requests.head(f"http://{registry_host}/v2/{repository}/manifests/3.11-gone",
                             headers={"Accept": DOCKER_LIST}, timeout=10)
    requests.delete(f"http://{registry_host}/v2/{repository}/manifests/"
                    f"{manifest.headers['Docker-Content-Digest']}", timeout=10).raise_for_status()
    engine.images.remove(gone)
    with pytest.raises(bai_client.SessionStartError, match="never ran its command"):
        bai_client.run_batch(bai_client.BatchJob(image=gone, command="true", timeout=300),
                             config=client_config)


def test_wrong_secret_key_is_a_credentials_error(sandbox: SandboxLayout) -> None:
    env = {**bootstrap.client_environment(sandbox), "BACKEND_SECRET_KEY": "not-the-secret"}
    with pytest.raises(bai_client.CredentialsError, match="BACKEND_SECRET_KEY"):
        bai_client.list_agents(bai_client.api_config(env))


def test_status_follows_the_agent_process_and_it_restarts_beside_another_agent(sandbox: SandboxLayout) -> None:
    """The manager keeps a dead agent ALIVE until its heartbeat times out, so status asks the process.
    Restarted while another agent holds Backend.AI's default metadata port (40128), the sandbox's agent
    comes up on its own port and registers."""
    pid = recorded_pid(sandbox.pidfile("agent"))
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while recorded_pid(sandbox.pidfile("agent")) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    [agent] = control.status(sandbox)["agents"]
    assert agent["status"].startswith("LOST"), agent
    assert "ALIVE" not in control.format_status(control.status(sandbox))
    with contextlib.ExitStack() as stack:
        if not port_open(DEFAULT_METADATA_PORT):
            other = stack.enter_context(socket.socket())
            other.bind(("0.0.0.0", DEFAULT_METADATA_PORT))
            other.listen()
        control.start_agent(sandbox)
    new_pid = recorded_pid(sandbox.pidfile("agent"))
    assert new_pid is not None and new_pid != pid
    assert sandbox.ports.metadata_server in neighbours.listening_ports(new_pid)
    [agent] = control.status(sandbox)["agents"]
    assert agent["status"] == "ALIVE"


def test_down_stops_everything_it_started(sandbox: SandboxLayout) -> None:
    stopped = control.down(sandbox)
    assert set(stopped) == {"postgres", *control.DAEMONS}
    assert not any(port_open(port) for port in sandbox.ports.listening().values())
    assert not any(state.running for state in control.services(sandbox))
    assert (sandbox.cfg / "manager.toml").exists(), "data is kept unless asked"
