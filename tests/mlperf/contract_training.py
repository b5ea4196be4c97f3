"""A torch-free training module that honours the run_and_time contract (--seed, --log-file).

It writes a complete Mask R-CNN MLPerf log with the accuracy given, so the driver, results and
compliance modules are exercised end to end in well under a second per run.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from common.mlperf.mllog import MLLog
from common.mlperf.mllog import constants as mlc


class Stopped(BaseException):
    """A signal arrived (BaseException: logging swallows Exceptions raised while it writes)."""


def _stop_on(signum: int, _frame: object) -> None:
    raise Stopped(signum)


def division_of(train_args: list[str]) -> str:
    """The division a run with these arguments logs (what run_and_time asks a benchmark before a series)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--division", choices=("closed", "open"), default="closed")
    return parser.parse_known_args(train_args)[0].division


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--division", choices=("closed", "open"), default="closed")
    parser.add_argument("--log-file", type=Path, required=True)
    parser.add_argument("--bbox", type=float, default=0.1)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--wait", action="store_true", help="after run_start, wait for a signal")
    args = parser.parse_args()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _stop_on)
    with MLLog.open(args.log_file) as log:
        log.event(mlc.CACHE_CLEAR, True)
        log.start(mlc.INIT_START)
        log.submission("maskrcnn", org="test", platform="cpu", division=args.division)
        log.event(mlc.SEED, args.seed)
        for key, value in ((mlc.GLOBAL_BATCH_SIZE, 2), (mlc.GRADIENT_ACCUMULATION_STEPS, 1),
                           (mlc.OPT_BASE_LR, 0.02), (mlc.OPT_LR_WARMUP_STEPS, 1),
                           (mlc.OPT_LR_WARMUP_FACTOR, 1 / 3), (mlc.NUM_IMAGE_CANDIDATES, 1000),
                           (mlc.OPT_LR_DECAY_FACTOR, 0.1), (mlc.OPT_LR_DECAY_STEPS, [4, 6]),
                           (mlc.MIN_IMAGE_SIZE, 800), (mlc.MAX_IMAGE_SIZE, 1333)):
            log.event(key, value)
        log.end(mlc.INIT_STOP)
        log.start(mlc.RUN_START)
        try:
            if args.wait:
                print("waiting for a signal", flush=True)
                time.sleep(60)
            log.event(mlc.TRAIN_SAMPLES, 8)
            log.event(mlc.EVAL_SAMPLES, 4)
            log.start(mlc.EPOCH_START, metadata={mlc.EPOCH_NUM: 1})
            log.end(mlc.EPOCH_STOP, metadata={mlc.EPOCH_NUM: 1})
            log.start(mlc.EVAL_START, metadata={mlc.EPOCH_NUM: 1})
            log.event(mlc.EVAL_ACCURACY, {"BBOX": args.bbox, "SEGM": args.bbox}, metadata={mlc.EPOCH_NUM: 1})
            log.end(mlc.EVAL_STOP, metadata={mlc.EPOCH_NUM: 1})
        except Stopped as stop:
            log.end(mlc.RUN_STOP, metadata={mlc.STATUS: mlc.ABORTED})
            return 128 + stop.args[0]
        converged = args.bbox >= 0.377
        log.end(mlc.RUN_STOP, metadata={mlc.STATUS: mlc.SUCCESS if converged else mlc.ABORTED})
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
