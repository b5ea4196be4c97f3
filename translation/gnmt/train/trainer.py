"""One epoch of training: teacher forcing, label smoothing, Adam, clipping, the LR schedule.

The loop never waits for the device inside a step: losses are summed on the device and checked
for NaN/inf every `check_every` steps (and at the end of the epoch), and token counts come from the
batch's lengths on the host.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from translation.gnmt.data.dataset import Batch
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
        check_every: int = 32,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.device = device
        self.label_smoothing, self.clip_grad_norm = label_smoothing, clip_grad_norm
        self.amp = amp and device.type == "cuda"
        self.check_every = check_every
        self.step_count = 0

    def _autocast(self) -> torch.autocast | nullcontext[None]:
        # bf16 keeps fp32's exponent range, so no loss scaling is needed.
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()

    def train_step(self, batch: Batch) -> torch.Tensor:
        """One update; the loss stays on the device (no synchronisation)."""
        batch = batch.to(self.device)
        tgt_in, tgt_out = batch.tgt[:, :-1], batch.tgt[:, 1:]
        with self._autocast():
            logits = self.model(batch.src, batch.src_lengths, tgt_in)
        loss = label_smoothed_loss(logits, tgt_out, self.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.step_count += 1
        return loss.detach()

    def _checked(self, loss_sum: torch.Tensor, since: int) -> float:
        value = float(loss_sum)
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"loss is {value} in steps {since + 1}-{self.step_count}: training aborted")
        return value

    def train_epoch(self, batches: Iterable[Batch]) -> EpochStats:
        self.model.train()
        start = time.perf_counter()
        steps, total_loss, tokens = 0, 0.0, 0
        window = torch.zeros((), device=self.device)
        for batch in batches:
            window += self.train_step(batch)
            steps, tokens = steps + 1, tokens + batch.tgt_tokens
            if steps % self.check_every == 0:
                total_loss += self._checked(window, self.step_count - self.check_every)
                window.zero_()
        total_loss += self._checked(window, self.step_count - steps % self.check_every)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return EpochStats(steps, total_loss / max(steps, 1), tokens, time.perf_counter() - start)
