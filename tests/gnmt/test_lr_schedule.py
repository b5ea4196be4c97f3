"""The reference's learning-rate schedule: exponential warmup, plateau, four halvings."""

from __future__ import annotations

import pytest

from translation.gnmt.options import parse_args
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


def _run_lrs(argv: list[str], steps_per_epoch: int, epochs: int) -> tuple[WarmupMultiStepSchedule, list[float]]:
    """The LR of every optimizer step of a run, from the trainer's own options and the scheduler main.py builds."""
    import torch  # noqa: PLC0415

    args = parse_args(["--data-dir", "d", "--seed", "1", *argv])
    schedule = WarmupMultiStepSchedule.for_run(steps_per_epoch * epochs, args.warmup_steps, args.remain_steps,
                                               args.decay_interval)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=args.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    seen = []
    for _ in range(steps_per_epoch * epochs):
        seen.append(optimizer.param_groups[0]["lr"])  # the LR this step's update uses
        optimizer.step()
        scheduler.step()
    return schedule, seen


def test_remain_steps_1_0_is_a_fraction_so_the_lr_never_decays_over_the_run() -> None:
    """The reference reads `1.0` as a fraction (the last step), `200` as a step; 1.0 must not mean step 1."""
    schedule, lrs = _run_lrs(["--remain-steps", "1.0", "--warmup-steps", "200", "--lr", "2e-3"], 700, 8)
    assert schedule.remain_steps == 5600
    warmup = [2e-3 * 0.01 ** ((200 - step) / 200) for step in range(200)]
    assert lrs[:200] == pytest.approx(warmup, rel=1e-12)
    assert lrs[200:] == [pytest.approx(2e-3, rel=1e-12)] * (5600 - 200)  # every later step: the base LR


def test_step_counts_and_fractions_are_told_apart_as_the_reference_does() -> None:
    args = parse_args(["--data-dir", "d", "--seed", "1", "--remain-steps", "1", "--warmup-steps", "0.1",
                       "--decay-interval", "50"])
    assert (args.remain_steps, args.warmup_steps, args.decay_interval) == (1, 0.1, 50)
    assert isinstance(args.remain_steps, int) and isinstance(args.warmup_steps, float)
    schedule = WarmupMultiStepSchedule.for_run(1000, args.warmup_steps, args.remain_steps, args.decay_interval)
    assert (schedule.warmup_steps, schedule.remain_steps) == (1, 1)  # warmup never outlasts remain (the reference's)
    _, lrs = _run_lrs(["--remain-steps", "0.5", "--warmup-steps", "0"], 100, 2)
    assert lrs[99] == pytest.approx(1e-3) and lrs[100] == pytest.approx(5e-4)  # decay from step 100 of 200


@pytest.mark.parametrize(("value", "message"), [("200.0", "write 200 for a step count"), ("-3", "not negative"),
                                                ("soon", "expected a step count (200) or a fraction")])
def test_a_step_option_that_is_neither_a_count_nor_a_fraction_is_refused(
        value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--data-dir", "d", "--seed", "1", "--remain-steps", value])
    assert message in capsys.readouterr().err
