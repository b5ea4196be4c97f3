"""What real clusters do to a run, on the sandbox: output past the agent's log cap, a host-network resource
group, preflight refusals before any session holds resources, and the client's
own requests (mounts by id, non-preemptible sessions) as the manager recorded them.

The test sandboxes keep 256 KiB of a container's log (conftest's LOG_CAP), and on the 26.x lines run two agents
over a single-node Docker swarm (the multi-node run and a run preempted mid-way are in test_cluster_runs.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from common.backendai import client as bai_client
from common.backendai.api import API
from common.backendai.sandbox import bootstrap
from common.backendai.sandbox.layout import SandboxLayout
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.docker, pytest.mark.registry,
              pytest.mark.timeout(3600)]
LINES = 20000
# ~1 MB of output, four times what the test sandboxes' agents keep, then the RESULT line and exit status 3.
LONG = ("python3 -c \"import sys\nfor n in range(" + str(LINES) + "): print('line %06d ' % n + 'x' * 40)\n"
        "print('RESULT,TEST,1,2,me,now')\nsys.exit(3)\"")
MODIFY_GROUP = ("mutation($name: String!, $props: ModifyScalingGroupInput!) "
                "{ modify_scaling_group(name: $name, props: $props) { ok msg } }")


def invoke(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def env(sandbox: SandboxLayout) -> dict[str, str]:
    return {**os.environ, **bootstrap.client_environment(sandbox), "PYTHONPATH": str(REPO_ROOT)}


def psql(sandbox: SandboxLayout, sql: str) -> str:
    """A query on the sandbox manager's database (the stand-in for what only the manager's scheduler does)."""
    password = bootstrap.load_secrets(sandbox)["db_password"]
    result = subprocess.run(["psql", "-qAt", "-h", "127.0.0.1", "-p", str(sandbox.ports.postgres), "-U", "postgres",
                             "-d", "backend", "-c", sql], capture_output=True, text=True, check=True,
                            env={**os.environ, "PGPASSWORD": password}, timeout=60)
    return result.stdout.strip()


def test_output_past_the_agents_log_cap_keeps_its_tail_and_exit_status(batch_image: str, env: dict[str, str]) -> None:
    """No folder to write to: the container log, whose start the agent cut, still gives the end."""
    result = invoke(env, "bai.run", batch_image, "--command", LONG, "--timeout", "600")
    assert result.returncode == 3, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[-1] == "RESULT,TEST,1,2,me,now"
    assert lines[-2] == f"line {LINES - 1:06d} " + "x" * 40


def test_output_through_a_folder_arrives_whole_however_long(batch_image: str, env: dict[str, str],
                                                            client_config: bai_client.APIConfig) -> None:
    try:
        result = invoke(env, "bai.run", batch_image, "--command", LONG, "--output", "test-output", "--timeout",
                        "600", "--name", "test-long-output")
        assert result.returncode == 3, result.stderr[-2000:]
        lines = result.stdout.splitlines()
        assert lines[: LINES + 1] == [f"line {n:06d} " + "x" * 40 for n in range(LINES)] + ["RESULT,TEST,1,2,me,now"]
        kept = bai_client.list_tree("test-output", config=client_config)
        assert kept["test-long-output/output.txt"] > 1_000_000
    finally:
        bai_client.delete_vfolder("test-output", config=client_config)


def test_the_manager_recorded_a_non_preemptible_session_with_its_folder_mounted_by_id(
        batch_image: str, sandbox: SandboxLayout, env: dict[str, str], server, client_config) -> None:
    bai_client.ensure_vfolder("test-by-id", config=client_config)
    name = f"test-by-id-{uuid.uuid4().hex[:8]}"
    try:
        result = invoke(env, "bai.run", batch_image, "--command", "ls /home/work/test-by-id >/dev/null && echo ok",
                        "--mount", "test-by-id", "--name", name)
        assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
        # 26.4.16 takes is_preemptible in the request but its session row keeps the default (true); 26.8+
        # records what was asked
        if server.version >= (26, 8, 0):
            assert psql(sandbox, f"select is_preemptible from sessions where name = '{name}'") == "f"
        # the folder mounted is the key's own, the one of that id (a vfid is "<quota scope>/<folder id>")
        mounts = json.loads(psql(sandbox, f"select vfolder_mounts from sessions where name = '{name}'"))
        folder_id = psql(sandbox, "select id from vfolders where name = 'test-by-id'").replace("-", "")
        assert [str(m["vfid"]).rsplit("/", 1)[-1].replace("-", "") for m in mounts] == [folder_id]
    finally:
        bai_client.delete_vfolder("test-by-id", config=client_config)


def test_an_unregistered_image_is_refused_before_any_session(project_repo: str, env: dict[str, str],
                                                             client_config: bai_client.APIConfig) -> None:
    before = set(bai_client.live_sessions(client_config))
    result = invoke(env, "bai.run", f"{project_repo}/never-pushed:1.0", "--command", "true")
    assert result.returncode == 1
    assert f"does not know {project_repo}/never-pushed:1.0 for x86_64; register it" in result.stderr
    assert set(bai_client.live_sessions(client_config)) == before


@pytest.fixture
def host_network(client_config: bai_client.APIConfig) -> Iterator[None]:
    """The sandbox's resource group with host networking, as an administrator sets it (and back)."""
    with API(client_config) as api:
        api.gql(MODIFY_GROUP, {"name": "default", "props": {"use_host_network": True}})
        try:
            yield
        finally:
            api.gql(MODIFY_GROUP, {"name": "default", "props": {"use_host_network": False}})


def test_a_host_network_group_runs_one_container_and_refuses_two_naming_the_defect(
        host_network: None, batch_image: str, env: dict[str, str], client_config: bai_client.APIConfig) -> None:
    one = invoke(env, "bai.run", batch_image, "--command", "echo one container")
    assert one.returncode == 0 and one.stdout.strip() == "one container", one.stderr
    before = set(bai_client.live_sessions(client_config))
    two = invoke(env, "bai.run", batch_image, "--command", "echo two containers", "--nodes", "2")
    output = two.stdout + two.stderr
    assert two.returncode == 1, output
    assert "resource group default" in output and "uses host networking" in output
    assert "keys its SSH port map by node-<kernel id>" in output and "One container per session runs there" in output
    assert set(bai_client.live_sessions(client_config)) == before


MODIFY_POLICY = ("mutation($name: String!, $props: ModifyKeyPairResourcePolicyInput!) "
                 "{ modify_keypair_resource_policy(name: $name, props: $props) { ok msg } }")


def wait_for_cpu_limit(api: API, group: str, wanted: str) -> None:
    """Until check-presets says the key's CPU limit is `wanted`, asked as a run's preflight asks (no resource group)
    and naming the group: the manager caches each form for a while (26.4 answered the preflight's form from before
    a change while the other was fresh), and a stale answer would refuse, or let through, the next run."""
    deadline = time.monotonic() + 90
    pending: list[str | None] = [None, "default"]
    while pending and time.monotonic() < deadline:
        presets = api.call("POST", "/resource/check-presets", json_body={"scaling_group": pending[0], "group": group},
                           doing="reading the key's limits")
        limit = str((presets.get("keypair_limits") or {}).get("cpu"))
        if limit == wanted or (limit.replace(".", "", 1).isdigit() and Decimal(limit) == Decimal(wanted)):
            pending.pop(0)  # "1", or "1.000000" where the manager writes decimals
        else:
            time.sleep(1)
    if pending:
        pytest.fail(f"the manager's check-presets never showed a CPU limit of {wanted}: {presets}")


@pytest.fixture
def one_cpu_policy(client_config: bai_client.APIConfig) -> Iterator[None]:
    """The key's resource policy capped at 1 CPU core, as an administrator sets it (and back, once the manager
    answers without the cap, so that no later test meets it)."""
    with API(client_config) as api:
        api.gql(MODIFY_POLICY, {"name": "default", "props": {"total_resource_slots": json.dumps({"cpu": "1"})}})
        try:
            wait_for_cpu_limit(api, client_config.group, "1")
            yield
        finally:
            api.gql(MODIFY_POLICY, {"name": "default", "props": {"total_resource_slots": "{}"}})
            wait_for_cpu_limit(api, client_config.group, "Infinity")


def test_a_request_above_the_keys_resource_policy_is_refused_before_any_session(
        one_cpu_policy: None, batch_image: str, env: dict[str, str], client_config: bai_client.APIConfig) -> None:
    before = set(bai_client.live_sessions(client_config))
    result = invoke(env, "bai.run", batch_image, "--command", "true", "--resources", "cpu=2,mem=2g")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ask for more than this key's resource policy allows (cpu 2 > 1)" in result.stderr
    assert "such a session never starts" in result.stderr
    assert set(bai_client.live_sessions(client_config)) == before
    fits = invoke(env, "bai.run", batch_image, "--command", "echo fits", "--resources", "cpu=1,mem=2g")
    assert fits.returncode == 0 and fits.stdout.strip() == "fits", fits.stderr
