"""A torch-free training that logs epochs at times chosen in advance, for `run --probe` tests.

Its MLPerf log's clock is made up (run_start at a fixed moment, each epoch's end and evaluation at the
seconds given), so a projection of it can be checked to the digit; between epochs it waits a little
real time so that a probe watching the log can stop it. It converges at `--converge-at` epochs (the
evaluation reaches the Mask R-CNN target there) unless stopped first; SIGTERM ends it as a trainer
ends: run_stop aborted, exit 128+15.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

T0_MS = 1_800_000_000_000


class Stopped(BaseException):
    """SIGTERM or SIGINT arrived."""


def _stop_on(signum: int, _frame: object) -> None:
    raise Stopped(signum)


def _write(log: TextIO, seconds: float, key: str, value: Any = None, **metadata: Any) -> None:
    record = {"namespace": "", "time_ms": T0_MS + round(seconds * 1000), "event_type": "POINT_IN_TIME", "key": key,
              "value": value, "metadata": {"file": "paced_training.py", "lineno": 1, **metadata}}
    log.write(":::MLLOG " + json.dumps(record) + "\n")
    log.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--log-file", type=Path, required=True)
    parser.add_argument("--global-batch", type=int, default=96)
    parser.add_argument("--first-epoch", type=float, default=90.0, help="log seconds from run_start to epoch 1's end")
    parser.add_argument("--epoch", type=float, default=60.0, help="log seconds per later epoch")
    parser.add_argument("--eval", type=float, default=10.0, help="log seconds from an epoch's end to its result")
    parser.add_argument("--converge-at", type=int, default=14)
    parser.add_argument("--pause", type=float, default=0.3, help="real seconds between epochs")
    args = parser.parse_args()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _stop_on)
    now = 0.0
    with args.log_file.open("w", encoding="utf-8") as log:
        for key, value in (("submission_benchmark", "maskrcnn"), ("submission_org", "test"),
                           ("submission_division", "closed"), ("global_batch_size", args.global_batch)):
            _write(log, -60, key, value)
        _write(log, 0, "run_start")
        try:
            for epoch in range(1, args.converge_at + 1):
                _write(log, now, "epoch_start", epoch_num=epoch)
                now = args.first_epoch if epoch == 1 else now + args.epoch
                _write(log, now, "epoch_stop", epoch_num=epoch)
                _write(log, now, "eval_start", epoch_num=epoch)
                bbox = 0.4 if epoch == args.converge_at else 0.1
                _write(log, now + args.eval, "eval_accuracy", {"BBOX": bbox, "SEGM": bbox}, epoch_num=epoch)
                _write(log, now + args.eval, "eval_stop", epoch_num=epoch)
                time.sleep(args.pause)
        except Stopped as stop:
            _write(log, now + args.eval, "run_stop", status="aborted")
            return 128 + stop.args[0]
        _write(log, now + args.eval, "run_stop", status="success")
    return 0


if __name__ == "__main__":
    sys.exit(main())
