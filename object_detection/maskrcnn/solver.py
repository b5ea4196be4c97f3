"""SGD with the reference's parameter groups, and the learning-rate schedule applied to each group.

Biases get twice the learning rate and no weight decay (BIAS_LR_FACTOR, WEIGHT_DECAY_BIAS); the
schedule (`schedule.Schedule.learning_rate`) gives each group's LR per iteration, so the LR used is
the one computed from the logged values.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from object_detection.maskrcnn.config import MOMENTUM, WEIGHT_DECAY
from object_detection.maskrcnn.schedule import Schedule

BIAS_LR_FACTOR = 2.0
BIAS_WEIGHT_DECAY = 0.0


def build_optimizer(model: nn.Module, base_lr: float, fused: bool | None = None) -> torch.optim.SGD:
    """`fused`: torch's single-kernel SGD, by default where the parameters are on a GPU: there it also takes
    GradScaler's inf check as a tensor, which saves the host sync of every step. On a CPU there is no such
    sync to save, and torch's default (foreach) SGD keeps the rounding the sample run was tuned with
    (the same update in float64, tests/maskrcnn/test_speed.py; fp32 rounding differs, and the sample's
    two epochs are that sensitive)."""
    if fused is None:
        fused = all(p.is_cuda for p in model.parameters())
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
        fused=fused,
    )


def _group_factor(schedule: Schedule, base_lr: float) -> Callable[[int], float]:
    """LambdaLR's multiplier for one group: the schedule's LR for it over its initial LR.

    A plain function, which LambdaLR leaves out of its state_dict (the checkpoint holds tensors only).
    """
    def factor(iteration: int) -> float:
        return schedule.learning_rate(iteration, base_lr) / base_lr if base_lr else 0.0
    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule) -> LambdaLR:
    return LambdaLR(optimizer, [_group_factor(schedule, group["lr"]) for group in optimizer.param_groups])
