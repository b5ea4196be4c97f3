"""One epoch of training: teacher forcing, label smoothing, Adam, clipping, the LR schedule."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from translation.gnmt.data.dataset import Batch
from translation.gnmt.data.vocabulary import PAD
from translation.gnmt.train.smoothing import label_smoothed_loss


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite: training cannot recover, the run aborts."""


@dataclass
class EpochStats:
    steps: int
    mean_loss: float
    target_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.target_tokens / self.seconds if self.seconds else 0.0


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        device: torch.device,
        label_smoothing: float = 0.1,
        clip_grad_norm: float = 5.0,
        amp: bool = False,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.device = device
        self.label_smoothing, self.clip_grad_norm = label_smoothing, clip_grad_norm
        self.amp = amp and device.type == "cuda"
        self.step_count = 0

    def _autocast(self) -> torch.autocast | nullcontext[None]:
        # bf16 keeps fp32's exponent range, so no loss scaling is needed.
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()

    def train_step(self, batch: Batch) -> tuple[float, int]:
        batch = batch.to(self.device)
        tgt_in, tgt_out = batch.tgt[:, :-1], batch.tgt[:, 1:]
        with self._autocast():
            logits = self.model(batch.src, batch.src_lengths, tgt_in)
        loss = label_smoothed_loss(logits, tgt_out, self.label_smoothing)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(f"loss is {value} at step {self.step_count}: training aborted")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.step_count += 1
        return value, int((tgt_out != PAD).sum())

    def train_epoch(self, batches: Iterable[Batch]) -> EpochStats:
        self.model.train()
        start = time.perf_counter()
        steps, total_loss, tokens = 0, 0.0, 0
        for batch in batches:
            loss, batch_tokens = self.train_step(batch)
            steps, total_loss, tokens = steps + 1, total_loss + loss, tokens + batch_tokens
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return EpochStats(steps, total_loss / max(steps, 1), tokens, time.perf_counter() - start)
