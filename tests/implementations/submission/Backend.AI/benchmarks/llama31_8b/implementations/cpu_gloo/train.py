"""A linear fit of y = 2x + 1, data-parallel over the job's tasks with gloo; rank 0 writes the MLPerf log.

Every value comes from srun's variables (SLURM_PROCID, SLURM_NTASKS, ...) and the config's (BATCHSIZE, EPOCHS,
DATA_DIR, RESULTS_DIR, ...): nothing else is read, as in a submission's per-task entry.
"""

import json
import os
import socket
import time

import torch
import torch.distributed as dist

RANK = int(os.environ["SLURM_PROCID"])
WORLD = int(os.environ["SLURM_NTASKS"])
ENV_SEEN = ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_NTASKS", "SLURM_NTASKS_PER_NODE",
            "SLURM_JOB_NUM_NODES", "SLURM_NNODES", "SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURMD_NODENAME",
            "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
            "OMPI_COMM_WORLD_NODE_RANK", "DGXNNODES", "DGXNGPU", "DGXSYSTEM", "BATCHSIZE", "SEED", "EPOCHS")


def mllog(key, value=None, event="POINT_IN_TIME", **metadata):
    if RANK == 0:
        record = {"namespace": "", "time_ms": int(time.time() * 1000), "event_type": event, "key": key,
                  "value": value, "metadata": {"file": "train.py", "lineno": 0, **metadata}}
        print(":::MLLOG " + json.dumps(record), flush=True)


def main():
    mllog("init_start", event="INTERVAL_START")
    tasks = os.path.join(os.environ["RESULTS_DIR"], "tasks")
    os.makedirs(tasks, exist_ok=True)
    with open(os.path.join(tasks, f"{RANK}.json"), "w") as handle:
        json.dump({"hostname": socket.gethostname(), "cwd": os.getcwd(),
                   **{k: os.environ.get(k) for k in ENV_SEEN}}, handle)
    host, port = os.environ["TINY_RENDEZVOUS"].rsplit(":", 1)
    dist.init_process_group("gloo", init_method=f"tcp://{host}:{port}", rank=RANK, world_size=WORLD)
    torch.manual_seed(int(os.environ["SEED"]))
    with open(os.path.join(os.environ["DATA_DIR"], "points.txt")) as handle:
        points = torch.tensor([[float(v) for v in line.split()] for line in handle if line.strip()])
    batch, epochs = int(os.environ["BATCHSIZE"]), int(os.environ["EPOCHS"])
    for key, value in (("submission_benchmark", "llama31_8b"), ("submission_org", "Backend.AI test"),
                       ("submission_division", "open"), ("submission_status", "onprem"),
                       ("submission_platform", os.environ["DGXSYSTEM"]), ("seed", int(os.environ["SEED"])),
                       ("global_batch_size", batch * WORLD), ("train_samples", len(points)),
                       ("eval_samples", len(points))):
        mllog(key, value)
    weight = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.05)
    mine = points[RANK::WORLD]
    dist.barrier()
    mllog("init_stop", event="INTERVAL_END")
    mllog("run_start", event="INTERVAL_START")
    for epoch in range(1, epochs + 1):
        seen = {"epoch_num": epoch, "samples_count": epoch * len(points)}
        mllog("epoch_start", event="INTERVAL_START", **seen)
        for start in range(0, len(mine), batch):
            x, y = mine[start:start + batch, 0], mine[start:start + batch, 1]
            optimizer.zero_grad()
            ((weight[0] * x + weight[1] - y) ** 2).mean().backward()
            dist.all_reduce(weight.grad)
            weight.grad /= WORLD
            optimizer.step()
        mllog("epoch_stop", event="INTERVAL_END", **seen)
        mllog("eval_start", event="INTERVAL_START", **seen)
        with torch.no_grad():
            error = ((weight[0] * points[:, 0] + weight[1] - points[:, 1]) ** 2).mean().item()
        mllog("eval_accuracy", error, **seen)
        mllog("eval_stop", event="INTERVAL_END", **seen)
    dist.barrier()
    mllog("run_stop", event="INTERVAL_END", status="success" if error < 1.0 else "aborted")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
