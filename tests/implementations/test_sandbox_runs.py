"""The tests' implementation as Backend.AI runs on the sandbox, through the commands a user types: imported
(built, checked, pushed, registered), its data in a virtual folder, run in one container with two tasks and in
two containers with one task each (the cluster's mock GPUs asked for, one per task). The logs come home into
results/<system>/llama31_8b/, pass the 5.1.0 checker and are scored; every task saw the world srun gives it.

Run with your own ports and folder, one sandbox suite at a time on a small machine:
    flock /work/sandbox.lock env MLPERF_BAI_TEST_PORT_BASE=40000 MLPERF_BAI_TEST_SANDBOX=/tmp/bai-test-impl \\
        MLPERF_BAI_TEST_LINES=26.9 python -m pytest tests/implementations -m sandbox
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.backendai import client as bai_client
from common.backendai import datasets
from common.backendai.sandbox import bootstrap
from common.backendai.sandbox.layout import SandboxLayout
from common.mlperf import compliance
from tests.conftest import REPO_ROOT
from tests.implementations.conftest import IMPL, SUBMISSION, import_image, write_points

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.docker, pytest.mark.registry, pytest.mark.training,
              pytest.mark.timeout(3600), pytest.mark.usefixtures("training_line")]
DATA = "impl-tiny-data"
RESULTS = "impl-results"


def invoke(env: dict[str, str], *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def cluster_env(sandbox: SandboxLayout) -> dict[str, str]:
    return {**os.environ, **bootstrap.client_environment(sandbox), "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture(scope="module")
def image(cluster_env: dict[str, str], base_image: str, wheelhouse: str, project_repo: str) -> str:
    """impl.import ... --push --register on the sandbox's manager."""
    return import_image(f"{project_repo}/tiny-gloo:5.1-cpu", base_image, wheelhouse, "--register", env=cluster_env)


@pytest.fixture(scope="module")
def data_vfolder(client_config: bai_client.APIConfig) -> Iterator[str]:
    """What ${DATADIR} holds, uploaded into a virtual folder (resumable upload of the project's datasets)."""
    with tempfile.TemporaryDirectory() as scratch:
        write_points(Path(scratch) / "tiny")
        datasets.upload_prepared(Path(scratch), DATA, config=client_config, progress=False)
    yield DATA
    bai_client.delete_vfolder(DATA, config=client_config)


def run(cluster_env: dict[str, str], image: str, config: str, results: Path, *extra: str) -> tuple[str, str]:
    done = invoke(cluster_env, "impl.run", "--impl", str(SUBMISSION / IMPL), "--config", config, "--vfolder", DATA,
                  "--on-cluster", "--image", image, "--results-vfolder", RESULTS, "--cpus-per-node", "1",
                  "--mem-per-node", "3g", "--shmem", "1g", "--seed", "3", "--timeout", "900", "--results-dir",
                  str(results), *extra)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    session = re.search(r"\[(mlperf-llama31_8b-[0-9a-f]+)\]", output)
    assert session, output[-3000:]
    return output, session.group(1)


def tasks_seen(session: str, count: int, config: bai_client.APIConfig) -> list[dict]:
    with tempfile.TemporaryDirectory() as scratch:
        names = [f"{session}/results/tasks/{rank}.json" for rank in range(count)]
        return [json.loads(path.read_text()) for path in bai_client.download(RESULTS, names, Path(scratch),
                                                                            config=config)]


def check_log(results: Path, output: str) -> Path:
    logs = list(results.glob("*/llama31_8b/result_0.txt"))
    assert len(logs) == 1, output[-3000:]
    assert f"MLPerf log: {logs[0]}" in output
    assert "compliance (5.1.0): PASSED" in output
    assert compliance.check_log(logs[0], "5.1.0").passed
    assert re.search(r"^bai-\dxCPU/llama31_8b: no score \(1 scored run\(s\)", output, re.MULTILINE), output[-2000:]
    assert "RESULT,LLAMA31_8B,3," in output
    return logs[0]


def test_one_container_runs_two_tasks_as_srun_would(cluster_env: dict[str, str], image: str, data_vfolder: str,
                                                    client_config: bai_client.APIConfig, tmp_path: Path) -> None:
    output, session = run(cluster_env, image, "config_CPU_1x2x4.sh", tmp_path / "results")
    log = check_log(tmp_path / "results", output)
    assert log.parent.parent.name == "bai-1xCPU"
    assert "launcher: world of 2 task(s) on 1 node(s) (main1), 2 per node" in output
    seen = tasks_seen(session, 2, client_config)
    assert [(t["SLURM_PROCID"], t["SLURM_LOCALID"], t["LOCAL_RANK"], t["SLURMD_NODENAME"]) for t in seen] == [
        ("0", "0", "0", "main1"), ("1", "1", "1", "main1")]
    assert {(t["SLURM_NTASKS"], t["WORLD_SIZE"], t["DGXSYSTEM"], t["cwd"]) for t in seen} == {
        ("2", "2", "CPU_1x2x4", "/workspace/impl")}
    description = json.loads((tmp_path / "systems" / "bai-1xCPU.json").read_text())  # beside results/
    assert description["other_software_stack"]["not_done_2"].startswith("page-cache drop on the host (run.sub:18)")


def test_two_containers_run_one_task_each_as_one_world(cluster_env: dict[str, str], image: str, data_vfolder: str,
                                                       client_config: bai_client.APIConfig, tmp_path: Path) -> None:
    output, session = run(cluster_env, image, "config_CPU_2x1x8.sh", tmp_path / "results")
    check_log(tmp_path / "results", output)
    assert "launcher: node sub1 answers SSH on port 2200" in output
    assert "launcher: world of 2 task(s) on 2 node(s) (main1, sub1), 1 per node" in output
    seen = tasks_seen(session, 2, client_config)
    assert [(t["SLURM_PROCID"], t["SLURM_NODEID"], t["SLURMD_NODENAME"], t["hostname"]) for t in seen] == [
        ("0", "0", "main1", "main1"), ("1", "1", "sub1", "sub1")]
    assert {(t["SLURM_JOB_NODELIST"], t["MASTER_ADDR"], t["BATCHSIZE"]) for t in seen} == {("main1,sub1", "main1", "8")}


def test_a_folder_the_mounts_need_is_checked_before_any_session(cluster_env: dict[str, str], image: str,
                                                                client_config: bai_client.APIConfig) -> None:
    done = invoke(cluster_env, "impl.run", "--impl", str(SUBMISSION / IMPL), "--config", "config_CPU_1x2x4.sh",
                  "--vfolder", "impl-no-such-folder", "--on-cluster", "--image", image, timeout=300)
    assert done.returncode == 1
    assert done.stderr.startswith("impl.run: virtual folder impl-no-such-folder (for /data, ${DATADIR}/tiny "
                                  "[run.sub:13]) does not exist on this cluster")
    assert bai_client.live_sessions(config=client_config) == []
