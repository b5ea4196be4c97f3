"""The environment srun gives each task, and PyTorch's and OpenMPI's views of the same world, as pure arithmetic."""

from __future__ import annotations

import pytest

from implementations import world


@pytest.fixture
def eight_by_eight() -> world.World:
    return world.World(world.backendai_hosts(8), 8, 29500, "4242", job_name="mlperf-llama31_8b-abc",
                       submit_dir="/workspace/llm")


def test_an_8x8_world_has_64_ranks_and_local_ranks_0_to_7_on_every_node(eight_by_eight: world.World) -> None:
    tasks = world.all_tasks(eight_by_eight)
    assert [t.rank for t in tasks] == list(range(64))
    assert [t.local for t in tasks] == list(range(8)) * 8
    assert [t.host for t in tasks[::8]] == ["main1", "sub1", "sub2", "sub3", "sub4", "sub5", "sub6", "sub7"]
    last = tasks[63].env
    assert (last["SLURM_PROCID"], last["SLURM_LOCALID"], last["SLURM_NODEID"], last["SLURMD_NODENAME"]) == (
        "63", "7", "7", "sub7")
    assert (last["SLURM_NTASKS"], last["SLURM_JOB_NUM_NODES"], last["SLURM_NNODES"], last["SLURM_NTASKS_PER_NODE"],
            last["SLURM_TASKS_PER_NODE"]) == ("64", "8", "8", "8", "8(x8)")
    assert last["SLURM_GTIDS"] == "56,57,58,59,60,61,62,63"
    assert last["SLURM_JOB_NODELIST"] == "main1,sub1,sub2,sub3,sub4,sub5,sub6,sub7"
    assert (last["SLURM_JOB_ID"], last["SLURM_JOB_NAME"], last["SLURM_SUBMIT_DIR"]) == (
        "4242", "mlperf-llama31_8b-abc", "/workspace/llm")


def test_slurm_torch_and_openmpi_agree_for_every_task(eight_by_eight: world.World) -> None:
    for task in world.all_tasks(eight_by_eight):
        env = task.env
        assert env["SLURM_PROCID"] == env["RANK"] == env["OMPI_COMM_WORLD_RANK"] == str(task.rank)
        assert env["SLURM_LOCALID"] == env["LOCAL_RANK"] == env["OMPI_COMM_WORLD_LOCAL_RANK"] == str(task.local)
        assert env["SLURM_NODEID"] == env["GROUP_RANK"] == env["OMPI_COMM_WORLD_NODE_RANK"] == str(task.node)
        assert env["SLURM_NTASKS"] == env["WORLD_SIZE"] == env["OMPI_COMM_WORLD_SIZE"] == "64"
        assert env["SLURM_NTASKS_PER_NODE"] == env["LOCAL_WORLD_SIZE"] == env["OMPI_COMM_WORLD_LOCAL_SIZE"] == "8"
        assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("main1", "29500")


def test_one_node_is_one_task_count_and_the_shape_is_checked() -> None:
    single = world.World(("main1",), 8, 29500, "1")
    assert world.slurm_env(single, 0, 7)["SLURM_TASKS_PER_NODE"] == "8"
    assert len(world.node_tasks(single, 0)) == 8
    with pytest.raises(ValueError, match="no task 8 on node 0"):
        single.rank(0, 8)
    with pytest.raises(ValueError, match="at least 1"):
        world.World(("main1",), 0, 29500, "1")
