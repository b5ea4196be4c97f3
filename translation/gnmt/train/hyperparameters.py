"""The hyper-parameter keys the MLPerf 0.7.0 closed GNMT rules require, each logged once, and the
gradient accumulation steps that make the global batch (a key the 1.0.0+ rules added; 0.7.0 ignores it)."""

from __future__ import annotations

from common.mlperf.mllog import MLLog
from common.mlperf.mllog import constants as mlc
from translation.gnmt.train.lr_scheduler import WarmupMultiStepSchedule


def log_hyperparameters(
    log: MLLog,
    *,
    global_batch_size: int,
    accumulation: int,
    learning_rate: float,
    schedule: WarmupMultiStepSchedule,
    max_sequence_length: int,
) -> None:
    log.event(mlc.GLOBAL_BATCH_SIZE, global_batch_size)
    log.event(mlc.GRADIENT_ACCUMULATION_STEPS, accumulation)
    log.event(mlc.OPT_NAME, mlc.ADAM)
    log.event(mlc.OPT_BASE_LR, learning_rate)
    # "alt" = the reference's exponential warmup and step decay, not the rules' defaults.
    log.event(mlc.OPT_LR_ALT_DECAY_FUNC, True)
    log.event(mlc.OPT_LR_ALT_WARMUP_FUNC, True)
    log.event(mlc.OPT_LR_DECAY_FACTOR, schedule.decay_factor)
    log.event(mlc.OPT_LR_DECAY_INTERVAL, schedule.decay_interval)
    log.event(mlc.OPT_LR_DECAY_STEPS, schedule.decay_steps)
    log.event(mlc.OPT_LR_REMAIN_STEPS, schedule.remain_steps)
    log.event(mlc.OPT_LR_WARMUP_STEPS, schedule.warmup_steps)
    log.event(mlc.MAX_SEQUENCE_LENGTH, max_sequence_length, metadata={"method": "discard"})
