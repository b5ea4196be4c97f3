"""One epoch of training: teacher forcing, label smoothing, Adam, clipping, the LR schedule.

An optimizer step takes `accumulation` consecutive batches: each one's loss (summed over tokens, divided
by its sentences) is divided by `accumulation` and back-propagated, so the summed gradient is the one of
their union, as the reference's `iter_size` does it; DDP all-reduces only at the last of them. The loop
never waits for the device inside a step: losses are summed on the device and checked for NaN/inf every
`check_every` steps (and at the end of the epoch), and token counts come from the batch's lengths on the host.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

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
        accumulation: int = 1,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.device = device
        self.label_smoothing, self.clip_grad_norm = label_smoothing, clip_grad_norm
        self.amp = amp and device.type == "cuda"
        self.check_every = check_every
        self.accumulation = accumulation
        self.step_count = 0

    def _autocast(self) -> torch.autocast | nullcontext[None]:
        # bf16 keeps fp32's exponent range, so no loss scaling is needed.
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()

    def _no_sync(self, last: bool) -> AbstractContextManager[None]:
        """DDP all-reduces the gradients at the last batch of a step only."""
        if last or not isinstance(self.model, DistributedDataParallel):
            return nullcontext()
        return self.model.no_sync()

    def train_step(self, batches: list[Batch]) -> torch.Tensor:
        """One update from the batches of one global batch; the loss stays on the device (no synchronisation)."""
        self.optimizer.zero_grad(set_to_none=True)
        step_loss = torch.zeros((), device=self.device)
        for k, host_batch in enumerate(batches):
            batch = host_batch.to(self.device)
            tgt_in, tgt_out = batch.tgt[:, :-1], batch.tgt[:, 1:]
            with self._no_sync(k == len(batches) - 1):
                with self._autocast():
                    logits = self.model(batch.src, batch.src_lengths, tgt_in)
                loss = label_smoothed_loss(logits, tgt_out, self.label_smoothing) / len(batches)
                loss.backward()
            step_loss += loss.detach()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.step_count += 1
        return step_loss

    def _steps(self, batches: Iterable[Batch]) -> Iterator[list[Batch]]:
        """The batches in groups of `accumulation` (the sampler yields whole groups)."""
        group: list[Batch] = []
        for batch in batches:
            group.append(batch)
            if len(group) == self.accumulation:
                yield group
                group = []

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
        for group in self._steps(batches):
            window += self.train_step(group)
            steps, tokens = steps + 1, tokens + sum(batch.tgt_tokens for batch in group)
            if steps % self.check_every == 0:
                total_loss += self._checked(window, self.step_count - self.check_every)
                window.zero_()
        total_loss += self._checked(window, self.step_count - steps % self.check_every)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return EpochStats(steps, total_loss / max(steps, 1), tokens, time.perf_counter() - start)
