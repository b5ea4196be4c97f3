"""common.mlperf.launcher: a Backend.AI cluster session's containers become one torchrun per node.

The two-node tests run real torchrun and gloo on this machine; `ssh` is a stand-in on PATH that runs the
remote command here (or refuses, for a host listed as dead), since no sshd runs between containers here.
The same launcher runs between real containers in tests/backendai/test_cluster_runs.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.mlperf import launcher
from tests.conftest import REPO_ROOT
from tests.ports import free_port

pytestmark = pytest.mark.timeout(300)  # its slow tests

SSH_STAND_IN = """#!/bin/sh
while [ $# -gt 2 ]; do case "$1" in -o|-i|-p) shift 2;; *) break;; esac; done
host="$1"; shift
if grep -qx "$host" "$DEAD_HOSTS" 2>/dev/null; then
    echo "ssh: connect to host $host port 2200: Connection refused" >&2; exit 255
fi
exec sh -c "$1"
"""
TRAINER = ["-m", "tests.mlperf.cluster_trainer"]


def test_one_container_runs_the_training_itself_or_standalone_torchrun() -> None:
    assert launcher.torchrun(TRAINER, nproc=1) == [sys.executable, *TRAINER]
    assert launcher.torchrun(TRAINER, nproc=4)[2:5] == ["torch.distributed.run", "--standalone", "--nproc-per-node=4"]


def test_cluster_nodes_rendezvous_statically_at_main1() -> None:
    command = launcher.torchrun(TRAINER, nproc=8, nnodes=2, node_rank=1, master_addr="main1")
    assert {"--nnodes=2", "--node-rank=1", "--nproc-per-node=8", "--rdzv-backend=static",
            "--master-addr=main1", "--master-port=29500"} <= set(command)


def test_the_environment_must_agree_with_itself() -> None:
    with pytest.raises(launcher.LaunchError, match="BACKENDAI_CLUSTER_SIZE=3 but BACKENDAI_CLUSTER_HOSTS names 2"):
        launcher.Cluster.from_environ({"BACKENDAI_CLUSTER_SIZE": "3", "BACKENDAI_CLUSTER_HOSTS": "main1,sub1"})
    cluster = launcher.Cluster.from_environ({"BACKENDAI_CLUSTER_SIZE": "2", "BACKENDAI_CLUSTER_HOSTS": "main1,sub1",
                                             "BACKENDAI_CLUSTER_LOCAL_RANK": "0"})
    assert (cluster.size, cluster.main_host, cluster.local_rank) == (2, "main1", 0)
    with pytest.raises(launcher.LaunchError, match="runs in main1"):
        launcher.launch(TRAINER, environ={"BACKENDAI_CLUSTER_SIZE": "2", "BACKENDAI_CLUSTER_HOSTS": "main1,sub1",
                                          "BACKENDAI_CLUSTER_LOCAL_RANK": "1"})
    with pytest.raises(launcher.LaunchError, match="BACKENDAI_CLUSTER_HOST=sub3 is not among"):
        launcher.Cluster.from_environ({"BACKENDAI_CLUSTER_SIZE": "2", "BACKENDAI_CLUSTER_HOSTS": "main1,sub1",
                                       "BACKENDAI_CLUSTER_HOST": "sub3"})


def test_main1_leads_whatever_order_the_session_lists_its_hosts_in() -> None:
    # As a 26.9 session's main container sees it: BACKENDAI_CLUSTER_HOSTS=sub1,main1.
    seen_in_main = {"BACKENDAI_CLUSTER_SIZE": "2", "BACKENDAI_CLUSTER_HOSTS": "sub1,main1",
                    "BACKENDAI_CLUSTER_HOST": "main1", "BACKENDAI_CLUSTER_ROLE": "main",
                    "BACKENDAI_CLUSTER_LOCAL_RANK": "0"}
    cluster = launcher.Cluster.from_environ(seen_in_main)
    assert (cluster.hosts, cluster.main_host, cluster.local_rank) == (("main1", "sub1"), "main1", 0)
    many = launcher.Cluster.from_environ({"BACKENDAI_CLUSTER_SIZE": "4", "BACKENDAI_CLUSTER_HOSTS":
                                          "sub3,sub2,main1,sub1",
                                          "BACKENDAI_CLUSTER_HOST": "main1"})
    assert many.hosts == ("main1", "sub1", "sub2", "sub3")
    assert launcher.main_first(["sub10", "sub9", "main1"]) == ("main1", "sub9", "sub10")
    # started in a sub, the launcher refuses (Backend.AI runs the batch command in main1 only)
    with pytest.raises(launcher.LaunchError, match="runs in main1"):
        launcher.launch(TRAINER, environ={**seen_in_main, "BACKENDAI_CLUSTER_HOST": "sub1"})


def test_system_names_say_what_the_session_got() -> None:
    two = {"BACKENDAI_CLUSTER_SIZE": "2", "BACKENDAI_CLUSTER_HOSTS": "main1,sub1"}
    assert launcher.system_name(two, ["NVIDIA H100 80GB HBM3"] * 8) == "bai-2x8xH100"
    assert launcher.system_name({}, ["NVIDIA A100-SXM4-40GB"]) == "bai-1x1xA100"
    assert launcher.system_name(two, []) == "bai-2xCPU"


def test_a_sub_gets_the_forwarded_environment_and_the_node_subcommand() -> None:
    cluster = launcher.Cluster(hosts=("main1", "sub1", "sub2"), local_rank=0)
    command = launcher.sub_command(cluster, 2, TRAINER, nproc="auto", master_port=29500,
                                   environ={"MLPERF_SYSTEM": "bai-3xCPU", "HOME": "/root", "NCCL_DEBUG": "INFO"})
    assert command[0] == "ssh" and "sub2" in command and "2200" in command
    remote = command[-1]
    assert "MLPERF_SYSTEM=bai-3xCPU" in remote and "NCCL_DEBUG=INFO" in remote and "HOME=" not in remote
    assert "common.mlperf.launcher node --node-rank=2 --nnodes=3 --master-addr=main1" in remote


@pytest.fixture
def two_nodes(tmp_path: Path) -> dict[str, str]:
    """Environment of main1 in a two-container session whose sub is this machine through the stand-in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(SSH_STAND_IN)
    (bin_dir / "ssh").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO_ROOT),
            "DEAD_HOSTS": str(tmp_path / "dead-hosts"), "BACKENDAI_CLUSTER_SIZE": "2",
            "BACKENDAI_CLUSTER_HOSTS": "127.0.0.1,localhost", "BACKENDAI_CLUSTER_LOCAL_RANK": "0",
            "MLPERF_TEST_TAG": "the forwarded environment", "OMP_NUM_THREADS": "1"}


def _launch(env: dict[str, str], *extra: str, port: int | None = None) -> tuple[int, str]:
    """The launcher with the stand-in ssh; a run that does not end within 180 s fails the test (rank 0 of the
    failing-sub test sleeps 600 s: only the launcher stopping it ends that run in time)."""
    result = subprocess.run([sys.executable, "-m", "common.mlperf.launcher", "--nproc-per-node", "1",
                             "--master-port", str(port or free_port()), *extra, "--", *TRAINER], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=180)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.training
def test_two_nodes_train_as_one_world(two_nodes: dict[str, str]) -> None:
    port = free_port()
    code, output = _launch(two_nodes, port=port)
    assert code == 0, output
    assert "launcher: node localhost answers SSH on port 2200" in output
    assert ("launcher: world of 2 worker(s) on 2 node(s) (127.0.0.1, localhost), 1 per node, rendezvous at "
            f"127.0.0.1:{port}") in output
    assert "rank 0 of 2: sum 3 on the forwarded environment" in output
    assert "rank 1 of 2: sum 3 on the forwarded environment" in output


@pytest.mark.slow
@pytest.mark.training
def test_a_failing_sub_stops_the_run_instead_of_hanging(two_nodes: dict[str, str]) -> None:
    code, output = _launch({**two_nodes, "MLPERF_TEST_FAIL_RANK": "1", "MLPERF_TEST_SLEEP": "600"})
    assert code != 0
    assert "launcher: node localhost exited with" in output
    assert "rank 0 of 2: slept" not in output  # stopped in its 600 s sleep, not ended by it


@pytest.mark.slow
def test_a_sub_that_never_answers_ssh_is_named(two_nodes: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "dead-hosts").write_text("localhost\n")
    code, output = _launch(two_nodes, "--ssh-timeout", "3")
    assert code == 1
    assert "cluster node localhost did not answer SSH on port 2200 within 3s" in output
    assert "Connection refused" in output
