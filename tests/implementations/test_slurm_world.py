"""The image's launcher (implementations.slurm_world) on this machine, no Backend.AI: the tests' implementation
trains with gloo in two tasks of one node, and in one task on each of two nodes (the second reached through an
`ssh` stand-in that runs the remote command here, as in tests/mlperf/test_launcher.py). Each task reports the
environment it saw; the MLPerf log the launcher collects passes the 5.1.0 checker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.mlperf import compliance, launcher
from implementations import importer, plan
from tests.conftest import REPO_ROOT
from tests.mlperf.test_launcher import SSH_STAND_IN


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(submission: Path, data_dir: Path, tmp_path: Path, config: str, env: dict[str, str],
           evict: list[str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict]:
    """`slurm_world run` with the plan of `config`, the implementation's container paths pointed into tmp_path."""
    impl = importer.read_implementation(submission)
    results = tmp_path / "out"
    the_plan = plan.make_plan(impl, config, data_vfolder="data", session="mlperf-llama31_8b-test",
                              env={"DATA_DIR": str(data_dir / "tiny"), "RESULTS_DIR": str(results),
                                   "RENDEZVOUS_PORT": str(free_port())})
    spec = the_plan.spec(seed=7, system="test-system")
    spec.update(config=str(submission / config), workdir=str(submission), results=str(tmp_path / "run"),
                evict=evict if evict is not None else [str(data_dir)], links=[])  # nothing at /data here
    done = subprocess.run([sys.executable, "-m", "implementations.slurm_world", "run"], cwd=REPO_ROOT,
                          env={**env, "MLPERF_IMPL_SPEC": json.dumps(spec), "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, timeout=600, check=False)
    return done, spec


def tasks_seen(tmp_path: Path) -> list[dict]:
    folder = tmp_path / "out" / "tasks"
    return [json.loads((folder / f"{rank}.json").read_text()) for rank in range(len(list(folder.iterdir())))]


def local_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BACKENDAI_")}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.training
def test_two_tasks_of_one_node_train_as_srun_would_start_them(submission: Path, data_dir: Path,
                                                              tmp_path: Path) -> None:
    done, spec = launch(submission, data_dir, tmp_path, "config_CPU_1x2x4.sh", local_env())
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    seen = tasks_seen(tmp_path)
    assert [(t["SLURM_PROCID"], t["SLURM_LOCALID"], t["RANK"], t["LOCAL_RANK"], t["OMPI_COMM_WORLD_RANK"])
            for t in seen] == [("0", "0", "0", "0", "0"), ("1", "1", "1", "1", "1")]
    for task in seen:
        assert (task["SLURM_NTASKS"], task["WORLD_SIZE"], task["SLURM_JOB_NUM_NODES"], task["SLURM_NODEID"]) == (
            "2", "2", "1", "0")
        assert (task["SLURM_JOB_ID"], task["DGXSYSTEM"], task["BATCHSIZE"], task["SEED"]) == (
            spec["job_id"], "CPU_1x2x4", "4", "7")
        assert task["cwd"] == str(submission)
    log = tmp_path / "run" / "test-system" / "llama31_8b" / "result_0.txt"
    assert f"MLPerf log: {log}" in output
    assert compliance.check_log(log, "5.1.0").passed
    records = [json.loads(line.split(" ", 1)[1]) for line in log.read_text().splitlines()]
    assert records[0]["key"] == "cache_clear" and records[0]["value"] is True
    assert [r["metadata"]["status"] for r in records if r["key"] == "run_stop"] == ["success"]
    assert "launcher: localhost: evicted 1 data file(s)" in output
    assert any(line.startswith("RESULT,LLAMA31_8B,7,") for line in done.stdout.splitlines())
    description = json.loads((tmp_path / "systems" / "test-system.json").read_text())
    assert description["division"] == "open"
    assert description["other_software_stack"]["not_done_2"].startswith("page-cache drop on the host (run.sub:18)")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.training
def test_two_nodes_of_one_task_each_are_one_world(submission: Path, data_dir: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(SSH_STAND_IN)
    (bin_dir / "ssh").chmod(0o755)
    env = {**local_env(), "PATH": f"{bin_dir}:{os.environ['PATH']}", "BACKENDAI_CLUSTER_SIZE": "2",
           "BACKENDAI_CLUSTER_HOSTS": "127.0.0.1,localhost", "BACKENDAI_CLUSTER_LOCAL_RANK": "0"}
    done, _ = launch(submission, data_dir, tmp_path, "config_CPU_2x1x8.sh", env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "launcher: node localhost answers SSH on port 2200" in output
    assert "launcher: world of 2 task(s) on 2 node(s) (127.0.0.1, localhost), 1 per node" in output
    seen = tasks_seen(tmp_path)
    assert [(t["SLURM_PROCID"], t["SLURM_LOCALID"], t["SLURM_NODEID"], t["SLURMD_NODENAME"], t["LOCAL_WORLD_SIZE"])
            for t in seen] == [("0", "0", "0", "127.0.0.1", "1"), ("1", "0", "1", "localhost", "1")]
    assert {t["SLURM_JOB_NODELIST"] for t in seen} == {"127.0.0.1,localhost"}
    assert {t["MASTER_ADDR"] for t in seen} == {"127.0.0.1"}
    log = tmp_path / "run" / "test-system" / "llama31_8b" / "result_0.txt"
    assert compliance.check_log(log, "5.1.0").passed
    # run.sub logs cache_clear once per node; so does the launcher
    assert sum('"key": "cache_clear"' in line for line in log.read_text().splitlines()) == 2


def test_the_first_task_that_fails_stops_the_others_and_eof_stops_them_all(tmp_path: Path) -> None:
    code = ("import sys\nfrom common.mlperf import launcher\n"
            "sys.exit(launcher.run_tasks([('slow', ['sleep', '600'], {'PATH': '/usr/bin:/bin'}), "
            "('failing', ['sh', '-c', 'sleep 1; exit 3'], {'PATH': '/usr/bin:/bin'})]))\n")
    started = time.monotonic()
    with subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:  # stdin stays open: main1 is there
        proc.wait(timeout=120)
        errors = proc.stderr.read()
    assert proc.returncode == 3
    assert "launcher: node failing exited with 3; stopping the others" in errors
    assert time.monotonic() - started < 60
    code = ("import sys\nfrom common.mlperf import launcher\n"
            "sys.exit(launcher.run_tasks([('a', ['sleep', '600'], {}), ('b', ['sleep', '600'], {})]))\n")
    with subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdin=subprocess.PIPE) as proc:
        time.sleep(1)
        proc.stdin.close()  # main1 gone
        assert proc.wait(timeout=60) == 128 + 15


def test_eviction_counts_what_it_evicted_and_names_what_it_could_not(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one").write_bytes(b"x" * 10)
    (tmp_path / "a" / "two").write_bytes(b"y" * 5)
    from implementations.slurm_world import evict  # noqa: PLC0415

    assert evict([tmp_path / "a"]) == (2, 15, [])
    files, _, failures = evict([tmp_path / "missing"])
    assert files == 0 and failures == [f"{tmp_path / 'missing'}: no such file or directory"]


def test_the_launcher_refuses_to_run_in_a_sub(monkeypatch: pytest.MonkeyPatch) -> None:
    from implementations import slurm_world  # noqa: PLC0415

    for key, value in {"BACKENDAI_CLUSTER_SIZE": "2", "BACKENDAI_CLUSTER_HOSTS": "main1,sub1",
                       "BACKENDAI_CLUSTER_HOST": "sub1"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(launcher.LaunchError, match="the launcher runs in main1, not in local rank 1"):
        slurm_world.run({"system": "x"})
