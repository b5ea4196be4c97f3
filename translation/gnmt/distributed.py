"""Process group from torchrun's environment (gloo on CPU, NCCL on GPU) and the few collectives used."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Workers:
    rank: int
    world_size: int
    device: torch.device
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def gather_dicts(self, local: dict[int, Any]) -> dict[int, Any]:
        if not self.distributed:
            return local
        parts: list[dict[int, Any] | None] = [None] * self.world_size
        dist.all_gather_object(parts, local)
        return {k: v for part in parts if part for k, v in part.items()}

    def all_true(self, flag: bool) -> bool:
        """Whether `flag` holds on every worker (an all-reduce on the workers' device)."""
        if not self.distributed:
            return flag
        value = torch.tensor(int(flag), device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def init_workers(device_name: str) -> Workers:
    """`device_name` is 'auto', 'cpu' or 'cuda'; torchrun's RANK/WORLD_SIZE select the group."""
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world_size > 1:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Workers(rank, world_size, device, local_rank)
