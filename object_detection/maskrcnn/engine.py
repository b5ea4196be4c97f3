"""One training epoch: forward, loss, backward, SGD step, LR schedule, with AMP on GPUs.

Nothing waits for the device within an iteration: the summed loss is added up on the device and
averaged over the workers every `sync_every` iterations (and at the end of the epoch), so all of
them see the same value and stop together when it is not finite (a worker stopping alone would
hang the others). A divergence is found at most `sync_every` iterations late; the run aborts all the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from tqdm import tqdm

from object_detection.maskrcnn.distributed import Workers
from object_detection.maskrcnn.transforms import Target


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the run cannot continue."""


@dataclass
class EpochStats:
    iterations: int = 0
    images: int = 0
    losses: list[float] = field(default_factory=list)  # the mean over workers of each window of iterations
    windows: list[int] = field(default_factory=list)  # iterations in each window

    @property
    def mean_loss(self) -> float:
        total = sum(self.windows)
        return sum(v * n for v, n in zip(self.losses, self.windows, strict=True)) / total if total else math.nan


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on GPUs (fp16, as the reference's apex amp); None: fp32 throughout."""
    return torch.float16 if device.type == "cuda" else None


def images_on(device: torch.device, images: list[torch.Tensor]) -> list[torch.Tensor]:
    """uint8 images (kept small in the loader, pinned for a GPU) as float 0-1 on the device."""
    return [image.to(device, non_blocking=True).float() / 255.0 for image in images]


def _global_mean(workers: Workers, total: torch.Tensor, count: int) -> float:
    """The mean over the workers of `total` / `count`: the one point where the host waits for the device."""
    if workers.distributed:
        dist.all_reduce(total)
    return float(total) / (count * workers.world_size)


def train_one_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batches: Iterable[tuple[list[torch.Tensor], list[Target]]],
    *,
    workers: Workers,
    scaler: torch.amp.GradScaler,
    iteration: int,
    max_iterations: int,
    epoch: int,
    should_stop: Callable[[], bool] | None = None,
    sync_every: int = 50,
) -> EpochStats:
    """Train until the loader is exhausted, the global iteration reaches max_iterations, or `should_stop`
    (asked every `sync_every` iterations, when the loss is read, at the same iteration on every worker) says so."""
    model.train()
    device = workers.device
    dtype = amp_dtype(device)
    stats = EpochStats()
    window = torch.zeros((), dtype=torch.float64, device=device)
    losses: dict[str, torch.Tensor] = {}

    def close_window() -> None:
        nonlocal window
        count = stats.iterations - sum(stats.windows)
        if count == 0:
            return
        value = _global_mean(workers, window, count)
        if not math.isfinite(value):
            parts = ", ".join(f"{k}={v.detach().item():.4g}" for k, v in losses.items())
            raise NonFiniteLossError(f"loss is {value} at epoch {epoch}, in iterations "
                                     f"{iteration + sum(stats.windows)}-{iteration + stats.iterations - 1} "
                                     f"(last: {parts})")
        stats.losses.append(value)
        stats.windows.append(count)
        window = torch.zeros_like(window)
        progress.set_postfix(loss=f"{value:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")

    progress = tqdm(batches, desc=f"epoch {epoch}", unit="it", disable=not workers.is_main, leave=False)
    for cpu_images, cpu_targets in progress:
        if iteration + stats.iterations >= max_iterations:
            break
        if should_stop is not None and stats.iterations and stats.iterations % sync_every == 0 and should_stop():
            break
        images = images_on(device, cpu_images)
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in cpu_targets]
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            losses = model(images, targets)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # fused SGD on a GPU: the scaler's inf check stays on the device too
        scaler.update()
        scheduler.step()
        window += loss.detach()
        stats.iterations += 1
        stats.images += len(images) * workers.world_size
        if stats.iterations % sync_every == 0:
            close_window()
    close_window()
    progress.close()
    return stats
