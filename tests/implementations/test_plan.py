"""`impl.run --dry-run`: the plan before any GPU is held (containers, every task's environment, mounts, command),
and every run it refuses before a session starts: one line, a non-zero exit.

The task is called in this process (invoke's Context; an Exit is what the CLI prints and exits with); one test
runs the real command line."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from invoke import Context, Exit

from implementations import importer, plan
from implementations import tasks as impl_tasks
from tests.conftest import REPO_ROOT


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_task(**options: object) -> Result:
    """impl.run as the CLI runs it: its output, and an Exit's message (stderr) and code."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            impl_tasks.run(Context(), **options)
        except Exit as error:
            message = f"{error.message}\n" if error.message else ""
            return Result(error.code, out.getvalue(), message)
    return Result(0, out.getvalue(), "")


def dry_run(submission: Path, config: str, **extra: object) -> Result:
    return run_task(impl=str(submission), config=config, vfolder="tiny-data", dry_run=True, **extra)


def test_an_8x8_config_plans_64_tasks_ranks_0_to_63_local_ranks_0_to_7_per_node(
        submission: Path, add_config: Callable[[str, int, int], str]) -> None:
    result = dry_run(submission, add_config("CPU_8x8x1", 8, 8))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    tasks = re.findall(r"^  task (\d+): (\w+) local (\d+): (.*)$", out, re.MULTILINE)
    assert [int(rank) for rank, *_ in tasks] == list(range(64))
    for rank, host, local, variables in tasks:
        node = int(rank) // 8
        assert host == ("main1" if node == 0 else f"sub{node}")
        assert int(local) == int(rank) % 8
        assert f"SLURM_PROCID={rank} SLURM_LOCALID={local} SLURM_NODEID={node}" in variables
        assert f"RANK={rank} LOCAL_RANK={local}" in variables and f"OMPI_COMM_WORLD_RANK={rank}" in variables
    assert "session: 8 container(s) (main1, sub1, sub2, sub3, sub4, sub5, sub6, sub7), 8 GPU(s) each" in out
    assert "world: 64 task(s), 8 per container, rendezvous at main1:29500" in out
    assert "cuda.device=8" in out
    for line in ("  SLURM_NTASKS=64", "  SLURM_JOB_NUM_NODES=8", "  SLURM_TASKS_PER_NODE=8(x8)", "  WORLD_SIZE=64",
                 "  DGXNNODES=8", "  DGXNGPU=8", "  RENDEZVOUS_PORT=29571"):  # the config's own and srun's
        assert line in out.splitlines()
    assert "tasks (each runs `./run_and_time.sh` in /workspace/impl; per-task variables):" in out


def test_the_plan_maps_each_mount_to_a_virtual_folder(submission: Path) -> None:
    out = dry_run(submission, "config_CPU_1x2x4.sh", results_vfolder="my-results").stdout
    assert "  /data -> /home/work/tiny-data/tiny (virtual folder tiny-data, read-only)  <- ${DATADIR}/tiny " \
           "[run.sub:13]" in out
    assert "  /results -> /home/work/my-results/SESSION/results (virtual folder my-results)  <- ${LOGDIR} " \
           "[run.sub:13]" in out
    assert "not done by Backend.AI: page-cache drop on the host (run.sub:18): done another way" in out


def test_the_json_plan_has_every_task_with_its_whole_environment(submission: Path) -> None:
    data = json.loads(dry_run(submission, "config_CPU_2x1x8.sh", json=True, env=["BINDCMD="]).stdout)
    assert (data["nodes"], data["tasks_per_node"], data["ruleset"]) == (2, 1, "5.1.0")
    assert [(t["rank"], t["host"], t["local"]) for t in data["tasks"]] == [(0, "main1", 0), (1, "sub1", 0)]
    second = data["tasks"][1]["env"]
    assert (second["SLURM_PROCID"], second["SLURM_NODEID"], second["BATCHSIZE"], second["BINDCMD"]) == (
        "1", "1", "8", "")


@pytest.mark.parametrize(("extra", "message"), [
    ({"config": "config_DGXH100.sh"}, "impl.run: Backend.AI/llama31_8b/cpu_gloo has no config config_DGXH100.sh"),
    ({"config": "config_CPU_1x2x4.sh", "gpus_per_node": "1"},
     "impl.run: config_CPU_1x2x4.sh asks for 2 GPU(s) per node (DGXNGPU=2), but the session has 1 per container"),
    ({"config": "config_CPU_1x2x4.sh", "mount": ["DATADIR"]}, "impl.run: --mount 'DATADIR': expected KEY=VALUE"),
    ({"config": "config_CPU_1x2x4.sh", "on_cluster": True}, "impl.run: --on-cluster needs --image"),
])
def test_a_run_it_cannot_do_is_refused_in_one_line(submission: Path, extra: dict, message: str) -> None:
    result = run_task(impl=str(submission), vfolder="d", dry_run="on_cluster" not in extra, **extra)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""


def test_a_mount_no_virtual_folder_provides_is_refused_naming_the_variable(submission: Path) -> None:
    result = run_task(impl=str(submission), config="config_CPU_1x2x4.sh", dry_run=True)
    assert result.returncode == 2
    assert result.stderr == ("impl.run: mount /data needs ${DATADIR} (run.sub:13: ${DATADIR}/tiny:/data), which no "
                             "virtual folder provides: give --vfolder VFOLDER[/SUBDIR]\n")
    run_sub = submission / "run.sub"
    run_sub.write_text(run_sub.read_text().replace('${LOGDIR}:/results"', '${LOGDIR}:/results,${PKLPATH}:/pkl"'))
    refused = dry_run(submission, "config_CPU_1x2x4.sh")
    assert refused.returncode == 2 and "mount /pkl needs ${PKLPATH}" in refused.stderr
    assert "give --mount PKLPATH=VFOLDER[/SUBDIR]" in refused.stderr
    planned = dry_run(submission, "config_CPU_1x2x4.sh", mount=["PKLPATH=more/coco"])
    assert "/pkl -> /home/work/more/coco" in planned.stdout


def test_an_unmappable_launch_and_a_folder_that_is_no_implementation_are_refused(submission: Path,
                                                                                  tmp_path: Path) -> None:
    run_sub = submission / "run.sub"
    run_sub.write_text(run_sub.read_text().replace('--ntasks-per-node="${DGXNGPU}"', "--ntasks=$TOTAL"))
    result = dry_run(submission, "config_CPU_1x2x4.sh")
    assert result.returncode == 2
    assert result.stderr.startswith("impl.run: run.sub:20: `srun -l --mpi=pmix --ntasks=$TOTAL")
    result = run_task(impl=str(tmp_path), config="x", dry_run=True, benchmark="llama31_8b")
    assert result.returncode == 2 and "is not an MLPerf implementation: it has no Dockerfile" in result.stderr


def test_fewer_nodes_than_the_config_is_for_is_planned_with_a_warning(submission: Path) -> None:
    impl = importer.read_implementation(submission)
    the_plan = plan.make_plan(impl, "config_CPU_2x1x8.sh", nodes=1, data_vfolder="d")
    assert the_plan.world.size == 1
    assert the_plan.warnings == ("config_CPU_2x1x8.sh is for 2 node(s); on 1 the world has 1 task(s) instead of 2",)
    cpu = plan.make_plan(impl, "config_CPU_1x2x4.sh", gpus_per_node=0, data_vfolder="d")
    assert cpu.warnings == ("a CPU run: 2 task(s) per container on CPUs, no GPUs asked for",)
    assert cpu.vfolders() == {"mlperf-results": False, "d": True}
    assert cpu.links() == "/data=/home/work/d/tiny;/results=/home/work/mlperf-results/SESSION/results"


@pytest.mark.slow
def test_the_command_line_prints_the_plan_and_refuses_in_one_line(submission: Path) -> None:
    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "invoke", "impl.run", "--impl", str(submission), *args],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)

    planned = invoke("--config", "config_CPU_2x1x8.sh", "--vfolder", "d", "--dry-run", "--seed", "5")
    assert planned.returncode == 0, planned.stderr
    assert "  task 1: sub1 local 0: " in planned.stdout and "  SEED=5" in planned.stdout
    refused = invoke("--config", "config_CPU_2x1x8.sh", "--vfolder", "d", "--dry-run", "--gpus-per-node", "-1")
    assert (refused.returncode, refused.stderr) == (2, "impl.run: --gpus-per-node must be 0 (a CPU run) or more, "
                                                       "not -1\n")
