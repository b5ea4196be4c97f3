"""Data parallelism through torchrun: process group, device, per-worker seeds, small collectives.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them this is a single process. NCCL on
GPUs, gloo on CPU. Collectives on Python objects are used only for evaluation results and
stop decisions, never per iteration.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Workers:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init() -> Workers:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Workers(rank, world_size, local_rank, device)


def barrier(workers: Workers) -> None:
    """Until every worker gets here."""
    if workers.distributed:
        dist.barrier()


def shutdown(workers: Workers) -> None:
    if workers.distributed and dist.is_initialized():
        dist.destroy_process_group()


def worker_seeds(seed: int, world_size: int) -> list[int]:
    """One seed per worker, all derived from the run's seed (the reference's generate_seeds)."""
    rng = random.Random(seed)
    return [rng.randint(0, 2**31 - 1) for _ in range(world_size)]


def gather_to_main(workers: Workers, value: Any) -> list[Any]:
    """Every worker's value, on rank 0 only (elsewhere an empty list): no rank holds what it does not use."""
    if not workers.distributed:
        return [value]
    values: list[Any] | None = [None] * workers.world_size if workers.is_main else None
    dist.gather_object(value, values, dst=0)
    return values or []


def broadcast(workers: Workers, value: Any) -> Any:
    """Rank 0's value on every worker."""
    if not workers.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]



def all_true(workers: Workers, flag: bool) -> bool:
    """Whether `flag` holds on every worker (an all-reduce on the workers' device)."""
    if not workers.distributed:
        return flag
    value = torch.tensor(int(flag), device=workers.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())
