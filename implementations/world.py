"""The environment SLURM gives each task, as pure arithmetic on the cluster's shape.

`srun --ntasks-per-node=T` on N nodes starts N*T tasks; task `local` of node `node` has global rank
node*T + local and sees SLURM's variables. NVIDIA's v5.x entries instead read PyTorch elastic's (RANK,
LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT: "MUST NOT have any SLURM dependences",
slurm2pytorch derives them from SLURM's), and MPI-style ones read OpenMPI's OMPI_COMM_WORLD_*. Every task gets
all three sets, consistent with each other, so an entry finds whichever it reads. Node 0 is Backend.AI's main1,
where rank 0 and the MLPerf log stay.

Stdlib only: the image's launcher computes its node's tasks with it, with the image's Python (3.10 or newer).
"""

from __future__ import annotations

from dataclasses import dataclass

# A SLURM cluster name the tasks may print; nothing else reads it.
CLUSTER_NAME = "backendai"


@dataclass(frozen=True)
class World:
    """The job's shape: its hosts (node 0 first), tasks per node, the rendezvous and the job's id."""

    hosts: tuple[str, ...]
    tasks_per_node: int
    master_port: int
    job_id: str
    job_name: str = "mlperf"
    submit_dir: str = "/"

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ValueError("a world needs at least one host")
        if self.tasks_per_node < 1:
            raise ValueError(f"tasks per node must be at least 1, not {self.tasks_per_node}")

    @property
    def nodes(self) -> int:
        return len(self.hosts)

    @property
    def size(self) -> int:
        return self.nodes * self.tasks_per_node

    @property
    def master_addr(self) -> str:
        return self.hosts[0]

    def rank(self, node: int, local: int) -> int:
        if not 0 <= node < self.nodes or not 0 <= local < self.tasks_per_node:
            raise ValueError(f"no task {local} on node {node} in a world of {self.nodes} x {self.tasks_per_node}")
        return node * self.tasks_per_node + local


@dataclass(frozen=True)
class Task:
    node: int
    local: int
    rank: int
    host: str
    env: dict[str, str]


def tasks_per_node_text(world: World) -> str:
    """SLURM's SLURM_TASKS_PER_NODE: `8(x2)` for 8 tasks on each of 2 nodes, `8` on one node."""
    count = str(world.tasks_per_node)
    return count if world.nodes == 1 else f"{count}(x{world.nodes})"


def slurm_env(world: World, node: int, local: int) -> dict[str, str]:
    """What srun sets in a task (the job's, the step's and the task's own variables)."""
    rank = world.rank(node, local)
    nodelist = ",".join(world.hosts)
    first = world.rank(node, 0)
    return {
        "SLURM_JOB_ID": world.job_id, "SLURM_JOBID": world.job_id, "SLURM_JOB_NAME": world.job_name,
        "SLURM_JOB_NUM_NODES": str(world.nodes), "SLURM_NNODES": str(world.nodes),
        "SLURM_JOB_NODELIST": nodelist, "SLURM_NODELIST": nodelist, "SLURM_CLUSTER_NAME": CLUSTER_NAME,
        "SLURM_NTASKS": str(world.size), "SLURM_NPROCS": str(world.size),
        "SLURM_NTASKS_PER_NODE": str(world.tasks_per_node), "SLURM_TASKS_PER_NODE": tasks_per_node_text(world),
        "SLURM_STEP_ID": "0", "SLURM_STEPID": "0", "SLURM_STEP_NUM_NODES": str(world.nodes),
        "SLURM_STEP_NUM_TASKS": str(world.size), "SLURM_STEP_NODELIST": nodelist,
        "SLURM_STEP_TASKS_PER_NODE": tasks_per_node_text(world),
        "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(local), "SLURM_NODEID": str(node),
        "SLURMD_NODENAME": world.hosts[node], "SLURM_TOPOLOGY_ADDR": world.hosts[node],
        "SLURM_GTIDS": ",".join(str(first + i) for i in range(world.tasks_per_node)),
        "SLURM_SUBMIT_DIR": world.submit_dir,
    }


def torch_env(world: World, node: int, local: int) -> dict[str, str]:
    """PyTorch elastic's variables, as torchrun (or slurm2pytorch) sets them."""
    return {
        "RANK": str(world.rank(node, local)), "LOCAL_RANK": str(local), "WORLD_SIZE": str(world.size),
        "LOCAL_WORLD_SIZE": str(world.tasks_per_node), "GROUP_RANK": str(node), "GROUP_WORLD_SIZE": str(world.nodes),
        "MASTER_ADDR": world.master_addr, "MASTER_PORT": str(world.master_port),
    }


def mpi_env(world: World, node: int, local: int) -> dict[str, str]:
    """OpenMPI's OMPI_COMM_WORLD_* (what mpirun, or srun --mpi=pmix with OpenMPI, tells each rank)."""
    return {
        "OMPI_COMM_WORLD_SIZE": str(world.size), "OMPI_COMM_WORLD_RANK": str(world.rank(node, local)),
        "OMPI_COMM_WORLD_LOCAL_SIZE": str(world.tasks_per_node), "OMPI_COMM_WORLD_LOCAL_RANK": str(local),
        "OMPI_COMM_WORLD_NODE_RANK": str(node),
    }


def task_env(world: World, node: int, local: int) -> dict[str, str]:
    return {**slurm_env(world, node, local), **torch_env(world, node, local), **mpi_env(world, node, local)}


def node_tasks(world: World, node: int) -> list[Task]:
    return [Task(node, local, world.rank(node, local), world.hosts[node], task_env(world, node, local))
            for local in range(world.tasks_per_node)]


def all_tasks(world: World) -> list[Task]:
    return [task for node in range(world.nodes) for task in node_tasks(world, node)]


def backendai_hosts(nodes: int) -> tuple[str, ...]:
    """The hostnames Backend.AI gives a cluster session's containers: main1, sub1, sub2, ..."""
    return ("main1", *(f"sub{i}" for i in range(1, nodes)))
