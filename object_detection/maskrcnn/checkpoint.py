"""Save after each epoch and resume a crashed run from the last one.

The file holds model, optimizer, scheduler, grad scaler, the finished epoch and iteration, and the
run's seed; it is written to a temporary name and renamed, so a crash never leaves half a file.
A resumed run is marked in its MLPerf log (train.py), since its time is not one run's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from common.atomic import atomic_path


class CheckpointError(RuntimeError):
    """The checkpoint cannot be read or belongs to another run."""


@dataclass(frozen=True)
class Resumed:
    epoch: int
    iteration: int


def save(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
         scaler: torch.amp.GradScaler, epoch: int, iteration: int, seed: int) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                    "epoch": epoch, "iteration": iteration, "seed": seed}, tmp)


def load(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
         scaler: torch.amp.GradScaler, seed: int) -> Resumed:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot read checkpoint ({error})") from error
    if state.get("seed") != seed:
        raise CheckpointError(f"{path}: checkpoint of the run with seed {state.get('seed')}, not {seed}")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    return Resumed(int(state["epoch"]), int(state["iteration"]))
