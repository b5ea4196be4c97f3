"""Train Mask R-CNN to the MLPerf target: `python -m object_detection.maskrcnn.train --data-dir D --seed N`.

Timing follows the rules: everything that does not read the dataset (model, weights, optimizer)
happens between init_start and init_stop; the dataset is first opened after run_start; each epoch
is followed by a COCO evaluation, and the run stops at BBOX >= 0.377 and SEGM >= 0.339 in the same
evaluation (run_stop status success) or when the epochs (or --max-iters) run out (status aborted).
Any fault (missing data or weights, a non-finite loss, SIGINT/SIGTERM) logs run_stop aborted and
exits non-zero; the MLPerf log written so far is kept.

The division is closed only when every setting the rules fix is the reference's; otherwise one line
on stderr names the settings that made it open (config.py).

`--dry-run` prints the MLPerf lines a run with these options would log (submission, division,
hyper-parameters) and the configuration in words, then exits 0, without torch or the dataset:
check a schedule before spending an 8-GPU hour on it. Under torchrun the number of workers is
torchrun's; `--workers` says how many a dry run should assume.

Exit codes (the same as GNMT's, and the contract of common.mlperf.run_and_time): 0 the target was reached,
3 every iteration ran without reaching it, 1 fault, 2 bad options, 128+N on signal N. torchrun reports
any non-zero worker code as 1 and prints the worker's own code in its summary.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from common.mlperf.mllog import MLLog
from object_detection.maskrcnn import config as run_config
from object_detection.maskrcnn.schedule import WARMUP_METHODS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="object_detection.maskrcnn.train", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=None, help="dataset folder (object_detection/layout.py)")
    p.add_argument("--seed", type=int, default=None, help="the run's seed (required, except for --dry-run)")
    p.add_argument("--log-file", type=Path, default=None, help="MLPerf log (also printed on stdout)")
    p.add_argument("--dry-run", action="store_true", help="print what the run would log, touch nothing")
    p.add_argument("--workers", type=int, default=None,
                   help="workers the run has (default: torchrun's WORLD_SIZE, else 1); for --dry-run")
    p.add_argument("--global-batch-size", type=int, default=run_config.DEFAULT_GLOBAL_BATCH,
                   help=f"images per iteration over all workers (default {run_config.DEFAULT_GLOBAL_BATCH}, "
                        "a reference convergence point: 12 per GPU on 8 GPUs)")
    p.add_argument("--eval-batch-size", type=int, default=2, help="images per worker and evaluation step")
    schedule = p.add_argument_group("schedule (default: the RCP of the global batch, else the rules' scaling)")
    schedule.add_argument("--base-lr", type=float, default=None)
    schedule.add_argument("--warmup-steps", type=int, default=None)
    schedule.add_argument("--warmup-factor", type=float, default=None)
    schedule.add_argument("--warmup-method", choices=WARMUP_METHODS, default=None,
                          help="linear: from factor x LR; mlperf_linear: LR - (steps - i) x factor")
    schedule.add_argument("--decay-steps", type=int, nargs=2, default=None)
    schedule.add_argument("--max-epochs", type=int, default=None,
                          help="stop after this many epochs (default 25; the target ends a run first)")
    schedule.add_argument("--max-iters", type=int, default=None, help="stop after this many iterations (no cap)")
    p.add_argument("--proposals-per-image", type=int, default=None,
                   help=f"RPN proposals kept per training image (default {run_config.PROPOSALS_PER_IMAGE}, the "
                        "reference's at every RCP; another number makes the run open division)")
    p.add_argument("--backbone", choices=run_config.BACKBONES, default="torchvision",
                   help="torchvision: ImageNet ResNet-50 (open division); caffe2: the reference's R-50.pkl")
    p.add_argument("--loader-workers", type=int, default=4)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="convolutions in channels-last layout (default: on a GPU)")
    p.add_argument("--eval-processes", type=int, default=4,
                   help="rank 0's processes that score an epoch while the next one trains (0: score at once, "
                        "in the trainer)")
    p.add_argument("--sync-every", type=int, default=50,
                   help="iterations between two host synchronisations: the loss is averaged over the workers "
                        "and logged, and the scored epochs are read (the run stops at the first on target)")
    p.add_argument("--checkpoint", type=Path, default=None, help="saved after each epoch; resumed if present")
    p.add_argument("--org", default="Backend.AI", help="submission_org")
    p.add_argument("--platform", default=None, help="submission_platform (default: <workers>x<device>)")
    p.add_argument("--division", choices=("closed", "open"), default=None,
                   help="default: closed when every setting the rules fix is the reference's (--backbone caffe2 "
                        "and the defaults), else open; closed with other settings exits 2 naming them")
    p.add_argument("--status", choices=("onprem", "cloud", "preview", "research"), default="onprem")
    tests = p.add_argument_group("test-only (smaller than the rules allow; for CPU smoke tests)")
    tests.add_argument("--min-size", type=int, default=800)
    tests.add_argument("--max-size", type=int, default=1333)
    tests.add_argument("--test-proposals", type=int, default=1000, help="RPN proposals per image at eval")
    tests.add_argument("--detections-per-image", type=int, default=100)
    tests.add_argument("--roi-samples", type=int, default=512, help="RoIs per image for the box-head loss")
    return p


def dry_run(args: argparse.Namespace, config: run_config.RunConfig) -> int:
    with MLLog.open(None) as log:
        run_config.log_configuration(log, args, config, f"{config.workers}x<device>")
    print(f"maskrcnn --dry-run: {run_config.division_line(config)}", flush=True)
    print(f"maskrcnn --dry-run: {run_config.describe(config)}", flush=True)
    return 0


def division_of(train_args: list[str]) -> str:
    """The division a run with these trainer options logs (run_and_time keeps one per system).
    Raises ConfigError for options that make no run of the division asked for."""
    args, _ = build_parser().parse_known_args(train_args)
    return run_config.from_args(args, 1).division


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    workers = args.workers or launched
    if not args.dry_run:
        if args.data_dir is None or args.seed is None:
            parser.error("--data-dir and --seed are required (except with --dry-run)")
        if workers != launched:
            parser.error(f"--workers {workers}, but {launched} worker(s) were launched (torchrun's WORLD_SIZE)")
    try:
        config = run_config.from_args(args, workers)
    except run_config.ConfigError as error:
        parser.error(str(error))
    if args.dry_run:
        return dry_run(args, config)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"maskrcnn: {run_config.division_line(config)}", file=sys.stderr, flush=True)
    from object_detection.maskrcnn import training  # noqa: PLC0415 - torch, only for a real run

    return training.main(args, config)


if __name__ == "__main__":
    sys.exit(main())
