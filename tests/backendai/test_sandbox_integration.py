"""A real single-node Backend.AI of each line (23.09, 26.9): up, register the project's image and a
relabelled one, batch sessions (exit codes, logs, timeouts, mock GPUs), virtual folders, errors, down.

The same tests run against every line; where the lines differ, the client follows the manager's
release, and the tests assert what a user sees: the same outcome everywhere.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import requests

from common.backendai import client as bai_client
from common.backendai import register as bai_register
from common.backendai.sandbox import bootstrap, control, neighbours
from common.backendai.sandbox.layout import SandboxLayout
from common.backendai.sandbox.processes import port_open, recorded_pid
from common.backendai.server import Server, parse_version
from common.registry.client import RegistryClient
from common.registry.manifests import DOCKER_LIST, OCI_INDEX, OCI_MANIFEST, Manifest, dump_json
from tests.backendai.conftest import image_projects, options_for
from tests.harness.system import ensure_commands

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.docker,
              pytest.mark.registry, pytest.mark.timeout(5400)]
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LineFacts:
    """What a Backend.AI line does, as these tests know it (facts/backendai-current-lines.md), apart from the
    client's own rule table (common/backendai/server.py): a wrong rule there fails here instead of steering
    the test to the branch it expects."""

    read_only_mounts: bool  # mounts take options (24.09+)
    ends_batch_timeout: bool  # the manager ends a batch session at batch_timeout (24.09+)
    registries_in_database: bool  # container_registries rows, one per registry and project (24.09+)
    scans_oci: bool  # the scanner asks for OCI media types (25.10+)


LINE_FACTS = {
    "23.09": LineFacts(read_only_mounts=False, ends_batch_timeout=False, registries_in_database=False,
                       scans_oci=False),
    "26.4": LineFacts(read_only_mounts=True, ends_batch_timeout=True, registries_in_database=True, scans_oci=True),
    "26.9": LineFacts(read_only_mounts=True, ends_batch_timeout=True, registries_in_database=True, scans_oci=True),
}


@pytest.fixture(scope="session")
def facts(sandbox: SandboxLayout) -> LineFacts:
    return LINE_FACTS[sandbox.line.name]
DEFAULT_METADATA_PORT = 40128  # Backend.AI's default for every agent's metadata server
PYTHON_JOB = ("python3 -c 'import sys; print(\"to-stdout\", 6 * 7); "
              "print(\"to-stderr\", file=sys.stderr); sys.exit({code})'")


def invoke(sandbox: SandboxLayout, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **bootstrap.client_environment(sandbox)}
    return subprocess.run([sys.executable, "-m", "invoke", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_second_up_finds_it_running(sandbox: SandboxLayout, registry_host: str) -> None:
    before = {state.name: state.pid for state in control.services(sandbox)}
    assert control.up(sandbox, [registry_host], projects=image_projects(sandbox),
                      options=options_for(sandbox.line.name)) == "running"
    assert {state.name: state.pid for state in control.services(sandbox)} == before  # nothing started again


def test_status_reports_the_alive_agent_its_resources_and_the_mock_gpus(sandbox: SandboxLayout,
                                                                        server: Server) -> None:
    report = control.status(sandbox)
    assert all(report["services"].values()), report["services"]
    assert report["version"] == sandbox.line.release
    assert server.version == parse_version(sandbox.line.release)
    agents = {agent["id"]: agent for agent in report["agents"]}
    assert set(agents) == set(sandbox.agent_ids(options_for(sandbox.line.name).agents))
    for agent in agents.values():
        assert agent["status"] == "ALIVE"
        assert float(agent["available"]["cpu"]) >= 1
        assert float(agent["available"]["cuda.device"]) == 4
    text = control.format_status(report)
    assert str(sandbox.client_env) in text and f"Backend.AI {sandbox.line.release}" in text
    assert bootstrap.load_secrets(sandbox)["secret_key"] not in text


def test_every_port_the_sandbox_listens_on_derives_from_its_base(sandbox: SandboxLayout) -> None:
    """So that it coexists with other sandboxes and agents on the host (40128 was the collision)."""
    listening = {state.name: neighbours.listening_ports(state.pid) for state in control.services(sandbox)
                 if state.pid is not None}
    assert set(listening) == {"postgres", *control.DAEMONS}
    stray = {name: sorted(set(ports) - set(sandbox.ports.span)) for name, ports in listening.items()}
    assert not any(stray.values()), stray
    assert sandbox.ports.metadata_server in listening["agent"]


def test_batch_exit_zero_returns_stdout_and_stderr(batch_image: str, client_config) -> None:
    result = bai_client.run_batch(bai_client.BatchJob(image=batch_image, command=PYTHON_JOB.format(code=0)),
                                  config=client_config)
    assert result.succeeded and result.exit_code == 0 and result.status == "SUCCESS"
    assert "to-stdout 42" in result.logs and "to-stderr" in result.logs


def test_run_task_exits_with_the_session_exit_code(batch_image: str, sandbox: SandboxLayout) -> None:
    """26.x reports no exit code (the events carry exitCode null): the framed command brings it."""
    done = invoke(sandbox, "bai.run", batch_image, "--command", PYTHON_JOB.format(code=7),
                  "--resources", "cpu=1,mem=2g")
    assert done.returncode == 7, done.stderr
    assert "to-stdout 42" in done.stdout and "::mlperf-bai:" not in done.stdout
    assert "FAILURE, exit code 7" in done.stderr


def test_session_reads_and_writes_a_mounted_vfolder(batch_image: str, client_config, tmp_path: Path) -> None:
    folder = f"data{uuid.uuid4().hex[:8]}"
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


def test_read_only_mount_refuses_writes_where_the_manager_can(batch_image: str, client_config, facts: LineFacts,
                                                              caplog: pytest.LogCaptureFixture,
                                                              tmp_path: Path) -> None:
    """The session writes what `touch` said and its exit status into a second, writable folder: the
    evidence is read from there, not from a container log a command this short may end before."""
    folder, notes = f"ro{uuid.uuid4().hex[:8]}", f"rw{uuid.uuid4().hex[:8]}"
    bai_client.ensure_vfolder(folder, config=client_config)
    bai_client.ensure_vfolder(notes, config=client_config)
    try:
        command = "touch /data/ro/written 2>/data/notes/touch.err; echo $? >/data/notes/touch.code"
        job = bai_client.BatchJob(image=batch_image, command=command, read_only={folder},
                                  mounts={folder: "/data/ro", notes: "/data/notes"})
        with caplog.at_level(logging.WARNING, logger="common.backendai.client"):
            result = bai_client.run_batch(job, config=client_config)
        assert result.exit_code == 0, result.logs
        code, err = (path.read_text() for path in bai_client.download(notes, ["touch.code", "touch.err"], tmp_path,
                                                                      config=client_config))
        written = "written" in bai_client.list_tree(folder, config=client_config)
        if facts.read_only_mounts:
            assert (code.strip(), written) == ("1", False), (code, err)
            assert "/data/ro/written" in err and "Read-only file system" in err, err  # not missing, not denied
        else:
            assert (code.strip(), err, written) == ("0", "", True)
            assert f"mounts {folder} read-write" in caplog.text
    finally:
        bai_client.delete_vfolder(folder, config=client_config)
        bai_client.delete_vfolder(notes, config=client_config)


def test_a_deleted_vfolder_name_can_be_created_again(client_config, tmp_path: Path) -> None:
    """24.03+ keeps a deleted folder in the trash under its name; delete_vfolder empties it from there."""
    folder = f"again{uuid.uuid4().hex[:8]}"
    (tmp_path / "a.txt").write_text("first")
    bai_client.ensure_vfolder(folder, config=client_config)
    bai_client.upload(folder, ["a.txt"], basedir=tmp_path, config=client_config)
    bai_client.delete_vfolder(folder, config=client_config)
    bai_client.ensure_vfolder(folder, config=client_config)
    try:
        assert bai_client.list_files(folder, config=client_config) == []
    finally:
        bai_client.delete_vfolder(folder, config=client_config)


def test_gpu_request_is_scheduled_on_the_mock_gpus(batch_image: str, client_config) -> None:
    job = bai_client.BatchJob(image=batch_image, command="env | grep -c MOCK_CUDA",
                              resources={"cpu": 1, "mem": "2g", "cuda.device": 1})
    result = bai_client.run_batch(job, config=client_config)
    assert result.exit_code == 0, result.logs


def test_batch_timeout_ends_the_session(batch_image: str, client_config, facts: LineFacts) -> None:
    """24.09+ end it themselves (batch_timeout); 23.09's session is destroyed by the client. `sleep 600`
    ends only if the timeout ends it (pytest-timeout stops a test that waits for it)."""
    name = f"timeout-{uuid.uuid4().hex[:8]}"
    job = bai_client.BatchJob(image=batch_image, command="sleep 600", timeout=10, name=name)
    with pytest.raises(bai_client.BatchTimeoutError) as raised:
        bai_client.run_batch(job, config=client_config)
    assert ("batch_timeout" in str(raised.value)) == facts.ends_batch_timeout, raised.value
    assert name not in bai_client.live_sessions(client_config)


def test_request_below_the_image_minimum_is_refused(batch_image: str, client_config) -> None:
    job = bai_client.BatchJob(image=batch_image, command="true", resources={"cpu": 1, "mem": "256m"})
    with pytest.raises(bai_client.RequestRejectedError, match=r"smaller than the .*minimum"):
        bai_client.run_batch(job, config=client_config)


def test_unknown_image_is_refused_with_a_hint(project_repo: str, client_config) -> None:
    job = bai_client.BatchJob(image=f"{project_repo}/never-pushed:1.0", command="true")
    with pytest.raises(bai_client.ImageNotRegisteredError, match=r"does not know .* register it: invoke bai\.register"):
        bai_client.run_batch(job, config=client_config)


def test_unregistrable_image_is_reported_with_the_release_and_rule(sandbox: SandboxLayout, unlabelled_image: str,
                                                                   registry_host: str, client_config,
                                                                   server: Server, facts: LineFacts) -> None:
    """23.09 skips an image without Backend.AI labels; 24.09+ take it, but scan only projects they
    have a registry row for."""
    if facts.registries_in_database:
        stranger = f"{registry_host}/mlperf-bai-unscanned-{uuid.uuid4().hex[:6]}/unlabelled:1.0"
        engine = docker.from_env()
        engine.images.get(unlabelled_image).tag(stranger)
        for line in engine.images.push(stranger, stream=True, decode=True):
            assert "error" not in line, line
        unlabelled_image = stranger
    with pytest.raises(bai_client.ImageNotRegisteredError) as raised:
        bai_register.register(unlabelled_image, config=client_config)
    message = str(raised.value)
    assert f"Backend.AI {server.release}" in message and "did not register" in message
    if facts.registries_in_database:
        assert "container_registries" in message and "since 25.6.0" in message


def test_image_converted_in_the_registry_runs(sandbox: SandboxLayout, unlabelled_image: str,
                                              client_config) -> None:
    """images.relabel writes the labels into the registry copy (no Docker build); bai.register
    registers it (wrapping it in a list where the manager needs one); a batch session runs in it."""
    converted = f"{unlabelled_image}-bai"
    for argv in (["images.relabel", unlabelled_image, "--to", converted, "--profile", "cpu", "--insecure"],
                 ["bai.register", converted]):
        done = invoke(sandbox, *argv)
        assert done.returncode == 0, done.stderr
    assert f"registered {converted}" in done.stdout
    result = bai_client.run_batch(bai_client.BatchJob(image=converted, command=PYTHON_JOB.format(code=0)),
                                  config=client_config)
    assert result.exit_code == 0 and "to-stdout 42" in result.logs, result.logs


def test_relabelled_index_with_annotated_entries_registers(sandbox: SandboxLayout, unlabelled_image: str,
                                                           project_repo: str, client_config, facts: LineFacts) -> None:
    """Official images annotate each platform of their OCI index; every line's scanner skips such
    entries. images.inspect says so, and images.relabel writes the index without them (with Docker
    media types for 23.09, which cannot read OCI ones: bai.register says so)."""
    ensure_commands("skopeo")
    repository = f"{project_repo.split('/', 1)[1]}/annotated"
    platform_tag = f"{project_repo}/annotated:1.0-amd64"
    copied = subprocess.run(["skopeo", "copy", "--format", "oci", "--src-tls-verify=false",
                             "--dest-tls-verify=false", f"docker://{unlabelled_image}", f"docker://{platform_tag}"],
                            capture_output=True, text=True, timeout=300)
    assert copied.returncode == 0, copied.stderr
    registry = RegistryClient(project_repo.split("/", 1)[0], insecure=True)
    child = registry.get_manifest(repository, "1.0-amd64")
    assert child.media_type == OCI_MANIFEST
    entry = {**child.descriptor({"architecture": "amd64", "os": "linux"}),
             "annotations": {"org.opencontainers.image.ref.name": "1.0", "com.example.arch": "amd64"}}
    index = Manifest(dump_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}), OCI_INDEX)
    registry.put_manifest(repository, "1.0", index)
    source, converted = f"{project_repo}/annotated:1.0", f"{project_repo}/annotated:1.0-bai"

    docker_format = [] if facts.scans_oci else ["--docker-format"]

    refused = invoke(sandbox, "bai.register", source)
    inspected = invoke(sandbox, "images.inspect", source, "--insecure")
    relabelled = invoke(sandbox, "images.relabel", source, "--to", converted, "--profile", "cpu", "--insecure",
                        *docker_format)
    registered = invoke(sandbox, "bai.register", converted)

    assert refused.returncode == 1
    assert ("--docker-format" if docker_format else "every entry of its index carries annotations") in refused.stderr
    assert "index entries carry annotations" in inspected.stdout
    assert "OCI media types: Backend.AI 23.09" in inspected.stdout
    assert relabelled.returncode == 0, relabelled.stderr
    assert "dropped the index annotations of linux/amd64" in relabelled.stderr
    rewritten = registry.get_manifest(repository, "1.0-bai")
    assert [set(e) for e in rewritten.document["manifests"]] == [{"mediaType", "size", "digest", "platform"}]
    assert rewritten.media_type == (OCI_INDEX if facts.scans_oci else DOCKER_LIST)
    assert registered.returncode == 0, registered.stderr
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
                             headers={"Accept": f"{DOCKER_LIST}, application/vnd.docker.distribution.manifest.v2+json"},
                             timeout=10)
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
    options = control.recorded_options(sandbox)
    agents = control.status(sandbox)["agents"]  # a 26.x sandbox's two agents live in the one process
    assert len(agents) == options.agents and all(a["status"].startswith("LOST") for a in agents), agents
    assert "ALIVE" not in control.format_status(control.status(sandbox))
    with contextlib.ExitStack() as stack:
        if not port_open(DEFAULT_METADATA_PORT):
            other = stack.enter_context(socket.socket())
            other.bind(("0.0.0.0", DEFAULT_METADATA_PORT))
            other.listen()
        control.start_agent(sandbox, options)
    new_pid = recorded_pid(sandbox.pidfile("agent"))
    assert new_pid is not None and new_pid != pid
    assert sandbox.ports.metadata_server in neighbours.listening_ports(new_pid)
    assert [a["status"] for a in control.status(sandbox)["agents"]] == ["ALIVE"] * options.agents


def test_down_stops_everything_it_started_and_up_brings_it_back(sandbox: SandboxLayout, registry_host: str,
                                                                 client_config) -> None:
    """Down, then up again (the data was kept): the tests after this one find the sandbox as before."""
    try:
        stopped = control.down(sandbox)
        assert set(stopped) == {"postgres", *control.DAEMONS}
        assert not any(port_open(port) for port in sandbox.ports.listening().values())
        assert not any(state.running for state in control.services(sandbox))
        assert (sandbox.cfg / "manager.toml").exists(), "data is kept unless asked"
        if sandbox.line.in_container:
            inspect = subprocess.run(["docker", "inspect", sandbox.service_container], capture_output=True)
            assert inspect.returncode != 0, "the service container is removed"
        kernels = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=ai.backend.owner={sandbox.agent_id}"],
                                 capture_output=True, text=True)
        assert kernels.stdout.split() == [], "the agent's containers are removed"
    finally:
        control.up(sandbox, [registry_host], projects=image_projects(sandbox), options=options_for(sandbox.line.name))
    agents = {agent["id"]: agent["status"] for agent in control.status(sandbox)["agents"]}
    assert agents[sandbox.agent_id] == "ALIVE", agents
    assert bai_client.list_agents(client_config)
