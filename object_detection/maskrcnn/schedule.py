"""The learning-rate schedule for a global batch, as MLPerf's reference convergence points give it.

Every row of `rcps_maskrcnn.json` in the installed mlperf_logging (`rcp_checker/training_<RULESET>/`) is
used as the reference uses it: base LR, warmup steps and factor and decay steps, with the reference's
`mlperf_linear` warmup (maskrcnn_benchmark/solver/lr_scheduler.py), where the factor is an LR increment
per iteration: lr(i) = base - (warmup_steps - i) * factor, a ramp from about 0.
A global batch without an RCP gets the rules' scaling of the reference's batch-16 schedule
(training_rules v2.0-v3.1): base LR 0.02*K (0.02/K below 16), decay steps (60000, 80000) * 16 / GBS,
and the reference's default `linear` warmup (500 iterations from a factor of 1/3).

No torch here: the trainer's --dry-run and the tests read schedules in a blink; `solver` applies them.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

# The compliance ruleset of the logs (object_detection/run_and_time.py) and of the RCP table.
RULESET = "3.1.0"
WarmupMethod = Literal["linear", "mlperf_linear"]
WARMUP_METHODS: tuple[WarmupMethod, ...] = ("linear", "mlperf_linear")
DECAY_FACTOR = 0.1
REFERENCE_BATCH = 16
REFERENCE_DECAY_STEPS = (60000, 80000)
# The slowest seed of any RCP needed 20 epochs (batch 64); the target, not this cap, ends a run.
MAX_EPOCHS = 25


class ScheduleError(ValueError):
    """No schedule for these values, or the RCP table cannot be read."""


@dataclass(frozen=True)
class Schedule:
    base_lr: float
    warmup_steps: int
    warmup_factor: float
    warmup_method: WarmupMethod
    decay_steps: tuple[int, int]

    def learning_rate(self, iteration: int, base_lr: float | None = None) -> float:
        """The LR at `iteration` of a parameter group whose undecayed LR is `base_lr` (default: base_lr).

        `mlperf_linear` subtracts the same amount from every group, as the reference does (biases,
        at twice the base LR, start at about the base LR); an LR below 0 is held at 0.
        """
        base = self.base_lr if base_lr is None else base_lr
        lr = base
        if iteration < self.warmup_steps:
            if self.warmup_method == "mlperf_linear":
                lr = max(0.0, base - (self.warmup_steps - iteration) * self.warmup_factor)
            else:
                alpha = iteration / self.warmup_steps
                lr = base * (self.warmup_factor * (1 - alpha) + alpha)
        return lr * DECAY_FACTOR ** bisect_right(self.decay_steps, iteration)


@cache
def reference_points() -> dict[int, Schedule]:
    """The RCP table of the installed mlperf_logging, by global batch."""
    source = resources.files("mlperf_logging") / "rcp_checker" / f"training_{RULESET}" / "rcps_maskrcnn.json"
    try:
        rows = json.loads(source.read_text(encoding="utf-8"))
        points = {}
        for name, row in rows.items():
            hp = row["Hyperparams"]
            points[int(row["BS"])] = Schedule(
                base_lr=float(hp["opt_base_learning_rate"]),
                warmup_steps=int(hp["opt_learning_rate_warmup_steps"]),
                warmup_factor=float(hp["opt_learning_rate_warmup_factor"]),
                warmup_method="mlperf_linear",
                decay_steps=tuple(int(s) for s in hp["opt_learning_decay_steps"]),
            )
            if len(points[int(row["BS"])].decay_steps) != 2:
                raise ValueError(f"{name}: expected two decay steps")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScheduleError(f"{source}: cannot read the reference convergence points ({exc!r})") from exc
    return points


def schedule_for(global_batch: int) -> Schedule:
    """The RCP's schedule for `global_batch`, else the rules' scaling of the batch-16 one."""
    if global_batch < 1:
        raise ScheduleError(f"global batch must be positive, got {global_batch}")
    if global_batch in reference_points():
        return reference_points()[global_batch]
    if global_batch >= REFERENCE_BATCH:
        base_lr = 0.02 * round(global_batch / REFERENCE_BATCH)
    else:
        base_lr = 0.02 / math.ceil(REFERENCE_BATCH / global_batch)
    scale = REFERENCE_BATCH / global_batch
    steps = (round(REFERENCE_DECAY_STEPS[0] * scale), round(REFERENCE_DECAY_STEPS[1] * scale))
    return Schedule(base_lr, 500, 1 / 3, "linear", steps)


def _whole(x: float) -> bool:
    return abs(round(x) - x) < 1e-5


def lr_allowed(base_lr: float, global_batch: int) -> bool:
    """The closed-division check of the compliance checker (training_rules v2.0-v3.1)."""
    return _whole(base_lr / 0.02) or (global_batch < REFERENCE_BATCH and _whole(0.02 / base_lr))


def decay_steps_allowed(decay_steps: tuple[int, ...], global_batch: int) -> bool:
    """The rules' (60000, 80000) x (1 + K / 10) x 16 / GBS for an integer K, to the step (the RCPs round
    5294.1 and 7058.8 down at batch 272)."""
    if len(decay_steps) != len(REFERENCE_DECAY_STEPS):
        return False
    k = round((decay_steps[0] * global_batch / (REFERENCE_BATCH * REFERENCE_DECAY_STEPS[0]) - 1) * 10)
    scale = (1 + k / 10) * REFERENCE_BATCH / global_batch
    return all(abs(step - reference * scale) < 1 for step, reference in zip(decay_steps, REFERENCE_DECAY_STEPS,
                                                                             strict=True))
