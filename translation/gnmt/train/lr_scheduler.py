"""The reference's schedule: exponential warmup, constant, then a fixed number of halvings.

Step counts are given as the reference's train.py reads them: an int is a step, a float a fraction
of the run's steps (so a remain of 1.0 is the last step: no decay); warmup never outlasts remain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def steps_from(value: int | float, total_steps: int) -> int:
    """The reference's convention (`perhaps_convert_float`): a float is a fraction of the total steps."""
    return int(value * total_steps) if isinstance(value, float) else value


@dataclass(frozen=True)
class WarmupMultiStepSchedule:
    """Learning-rate factor per step (multiplies the base learning rate).

    Warmup grows as 0.01 ** ((warmup - step) / warmup); from `remain_steps` on, the factor is
    decay_factor ** k with k = min(decay_steps, (step - remain) // interval + 1).
    """

    warmup_steps: int
    remain_steps: int
    decay_interval: int
    decay_steps: int = 4
    decay_factor: float = 0.5

    @classmethod
    def for_run(
        cls,
        total_steps: int,
        warmup_steps: int | float = 200,
        remain_steps: int | float = 0.666,
        decay_interval: int | float | None = None,
        decay_steps: int = 4,
        decay_factor: float = 0.5,
    ) -> WarmupMultiStepSchedule:
        remain = steps_from(remain_steps, total_steps)
        warmup = min(steps_from(warmup_steps, total_steps), remain)
        if decay_interval is None:
            interval = max(1, (total_steps - remain) // decay_steps)
        else:
            interval = max(1, steps_from(decay_interval, total_steps))
        return cls(warmup, remain, interval, decay_steps, decay_factor)

    def __call__(self, step: int) -> float:
        if step <= self.warmup_steps and self.warmup_steps > 0:
            return math.exp(math.log(0.01) * (self.warmup_steps - step) / self.warmup_steps)
        if step >= self.remain_steps:
            decays = min(self.decay_steps, (step - self.remain_steps) // self.decay_interval + 1)
            return self.decay_factor**decays
        return 1.0
