"""SGD with the reference's parameter groups, warmup + multi-step schedule, and the hyper-parameters
the MLPerf rules derive from the global batch size.

Rules (closed division, training_rules v2.0-v3.1): base LR 0.02*K, or 0.02/K when the global batch
is below 16; decay factor 0.1 fixed; decay steps (60000, 80000) * (1 + K/10) * 16 / GBS; warmup
free. Where MLPerf's reference convergence points (RCPs) list a global batch, their values are used.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
BIAS_LR_FACTOR = 2.0
BIAS_WEIGHT_DECAY = 0.0
DECAY_FACTOR = 0.1
REFERENCE_DECAY_STEPS = (60000, 80000)
REFERENCE_BATCH = 16


@dataclass(frozen=True)
class Schedule:
    base_lr: float
    warmup_steps: int
    warmup_factor: float
    decay_steps: tuple[int, int]

    @property
    def max_iters(self) -> int:
        """The reference trains 90k iterations for decay steps at 60k/80k: 9/8 of the last step."""
        return math.ceil(self.decay_steps[1] * 9 / 8)


# mlperf_logging rcp_checker/training_3.1.0/rcps_maskrcnn.json (warmup factor 1/3 where not given).
_RCP: dict[int, Schedule] = {
    8: Schedule(0.01, 500, 1 / 3, (144000, 192000)),
    48: Schedule(0.06, 800, 9.6e-5, (24000, 32000)),
    64: Schedule(0.08, 800, 1 / 3, (18000, 24000)),
    96: Schedule(0.12, 625, 1.92e-4, (12000, 16000)),
    128: Schedule(0.16, 625, 1 / 3, (9000, 12000)),
    256: Schedule(0.24, 1800, 1 / 3, (5625, 7500)),
}


def rule_schedule(global_batch: int) -> Schedule:
    """The schedule for a global batch: its RCP, else the reference's linearly scaled."""
    if global_batch < 1:
        raise ValueError(f"global batch must be positive, got {global_batch}")
    if global_batch in _RCP:
        return _RCP[global_batch]
    if global_batch >= REFERENCE_BATCH:
        base_lr = 0.02 * round(global_batch / REFERENCE_BATCH)
    else:
        base_lr = 0.02 / math.ceil(REFERENCE_BATCH / global_batch)
    scale = REFERENCE_BATCH / global_batch
    steps = (round(REFERENCE_DECAY_STEPS[0] * scale), round(REFERENCE_DECAY_STEPS[1] * scale))
    return Schedule(base_lr, 500, 1 / 3, steps)


def lr_allowed(base_lr: float, global_batch: int) -> bool:
    """The closed-division check of the compliance checker (3.1.0)."""
    def whole(x: float) -> bool:
        return abs(round(x) - x) < 1e-5
    return whole(base_lr / 0.02) or (global_batch < REFERENCE_BATCH and whole(0.02 / base_lr))


def build_optimizer(model: nn.Module, base_lr: float) -> torch.optim.SGD:
    """Biases get twice the learning rate and no weight decay (BIAS_LR_FACTOR, WEIGHT_DECAY_BIAS)."""
    weights, biases = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (biases if name.endswith(".bias") else weights).append(parameter)
    return torch.optim.SGD(
        [
            {"params": weights, "lr": base_lr, "weight_decay": WEIGHT_DECAY},
            {"params": biases, "lr": base_lr * BIAS_LR_FACTOR, "weight_decay": BIAS_WEIGHT_DECAY},
        ],
        lr=base_lr,
        momentum=MOMENTUM,
    )


def lr_factor(iteration: int, schedule: Schedule) -> float:
    """Linear warmup from warmup_factor to 1, then x0.1 at each decay step (WarmupMultiStepLR)."""
    warmup = 1.0
    if iteration < schedule.warmup_steps:
        alpha = iteration / schedule.warmup_steps
        warmup = schedule.warmup_factor * (1 - alpha) + alpha
    return warmup * DECAY_FACTOR ** bisect_right(schedule.decay_steps, iteration)


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule) -> LambdaLR:
    return LambdaLR(optimizer, lambda it: lr_factor(it, schedule))
