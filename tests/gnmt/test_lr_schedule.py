"""The reference's learning-rate schedule: exponential warmup, plateau, four halvings."""

from __future__ import annotations

import pytest

from translation.gnmt.train.lr_scheduler import WarmupMultiStepSchedule


def test_warmup_rises_exponentially_from_one_percent() -> None:
    schedule = WarmupMultiStepSchedule.for_run(total_steps=1000, warmup_steps=200)
    assert schedule(0) == pytest.approx(0.01)
    assert schedule(100) == pytest.approx(0.1)
    assert schedule(200) == pytest.approx(1.0)
    factors = [schedule(s) for s in range(201)]
    assert factors == sorted(factors)


def test_plateau_then_four_halvings_at_the_reference_interval() -> None:
    schedule = WarmupMultiStepSchedule.for_run(total_steps=1000, warmup_steps=200, remain_steps=0.666)
    assert (schedule.remain_steps, schedule.decay_interval) == (666, 83)  # (1000 - 666) // 4
    assert schedule(665) == 1.0
    assert schedule(666) == 0.5
    assert schedule(666 + 83) == 0.25
    assert schedule(666 + 3 * 83) == 0.0625
    assert schedule(999) == 0.0625  # never more than 4 decays


def test_explicit_steps_as_the_large_batch_submissions_set_them() -> None:
    schedule = WarmupMultiStepSchedule.for_run(
        total_steps=9000, warmup_steps=200, remain_steps=6453, decay_interval=809
    )
    assert (schedule.warmup_steps, schedule.remain_steps, schedule.decay_interval) == (200, 6453, 809)
    assert schedule(6453 + 809) == 0.25
