"""Train Mask R-CNN to the MLPerf target: `python -m object_detection.maskrcnn.train --data-dir D --seed N`.

Timing follows the rules: everything that does not read the dataset (model, weights, optimizer)
happens between init_start and init_stop; the dataset is first opened after run_start; each epoch
is followed by a COCO evaluation, and the run stops at BBOX >= 0.377 and SEGM >= 0.339 in the same
evaluation (run_stop status success) or when the iterations run out (status aborted). Any fault
(missing data or weights, a non-finite loss, SIGINT/SIGTERM) logs run_stop aborted and exits
non-zero; the MLPerf log written so far is kept.

Exit codes (the same as GNMT's, and the contract of common.mlperf.run_and_time): 0 the target was reached,
3 every iteration ran without reaching it, 1 fault, 128+N on signal N. torchrun reports any non-zero
worker code as 1 and prints the worker's own code in its summary.
`run(options) -> RunReport` is the same run without the signal handling, for callers in-process.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from common.mlperf.mllog import MLLog
from common.mlperf.mllog import constants as mlc
from object_detection.layout import CocoLayout
from object_detection.maskrcnn import checkpoint, distributed, solver
from object_detection.maskrcnn.data import CocoInstances, DatasetError, GroupedBatchSampler, collate
from object_detection.maskrcnn.distributed import Workers
from object_detection.maskrcnn.engine import NonFiniteLossError, train_one_epoch
from object_detection.maskrcnn.evaluation import evaluate, reached_target
from object_detection.maskrcnn.model import ModelOptions, WeightsError, build_model

BENCHMARK = "maskrcnn"
EXIT_FAULT = 1
EXIT_BELOW_TARGET = 3


class RunInterruptedError(BaseException):
    """SIGINT or SIGTERM arrived during the run.

    A BaseException, like KeyboardInterrupt: logging and mlperf_logging swallow any Exception
    raised while they write, which is where a signal often lands.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@dataclass
class RunReport:
    status: str = mlc.ABORTED
    reason: str = ""
    epochs: int = 0
    iterations: int = 0
    global_batch: int = 0
    losses: list[float] = field(default_factory=list)
    accuracy: list[dict[str, float]] = field(default_factory=list)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="object_detection.maskrcnn.train", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, required=True, help="dataset folder (object_detection/layout.py)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--log-file", type=Path, default=None, help="MLPerf log (also printed on stdout)")
    p.add_argument("--batch-size", type=int, default=2, help="images per worker and iteration")
    p.add_argument("--eval-batch-size", type=int, default=2)
    p.add_argument("--base-lr", type=float, default=None, help="default: from the rules for the global batch")
    p.add_argument("--warmup-steps", type=int, default=None)
    p.add_argument("--warmup-factor", type=float, default=None)
    p.add_argument("--decay-steps", type=int, nargs=2, default=None)
    p.add_argument("--max-iters", type=int, default=None, help="default: 9/8 of the last decay step")
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--loader-workers", type=int, default=4)
    p.add_argument("--checkpoint", type=Path, default=None, help="saved after each epoch; resumed if present")
    p.add_argument("--org", default="Backend.AI", help="submission_org")
    p.add_argument("--platform", default=None, help="submission_platform (default: <workers>x<device>)")
    p.add_argument("--division", choices=("closed", "open"), default="closed")
    p.add_argument("--status", choices=("onprem", "cloud", "preview", "research"), default="onprem")
    tests = p.add_argument_group("test-only (smaller than the rules allow; for CPU smoke tests)")
    tests.add_argument("--min-size", type=int, default=800)
    tests.add_argument("--max-size", type=int, default=1333)
    tests.add_argument("--test-proposals", type=int, default=1000, help="RPN proposals per image at eval")
    tests.add_argument("--detections-per-image", type=int, default=100)
    tests.add_argument("--roi-samples", type=int, default=512, help="RoIs per image for the box-head loss")
    return p


def _clear_caches() -> bool:
    """Drop the page cache when allowed (root on the host); MLPerf logs whether it was."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _schedule(args: argparse.Namespace, global_batch: int) -> solver.Schedule:
    rules = solver.rule_schedule(global_batch)
    return solver.Schedule(
        base_lr=args.base_lr if args.base_lr is not None else rules.base_lr,
        warmup_steps=args.warmup_steps if args.warmup_steps is not None else rules.warmup_steps,
        warmup_factor=args.warmup_factor if args.warmup_factor is not None else rules.warmup_factor,
        decay_steps=tuple(args.decay_steps) if args.decay_steps else rules.decay_steps,
    )


def _model_options(args: argparse.Namespace) -> ModelOptions:
    return ModelOptions(min_size=args.min_size, max_size=args.max_size,
                        rpn_pre_nms_top_n_test=args.test_proposals, rpn_post_nms_top_n_test=args.test_proposals,
                        box_detections_per_img=args.detections_per_image,
                        box_batch_size_per_image=args.roi_samples)


def _log_hyperparameters(log: MLLog, args: argparse.Namespace, schedule: solver.Schedule,
                         global_batch: int, options: ModelOptions) -> None:
    for key, value in (
        (mlc.GLOBAL_BATCH_SIZE, global_batch),
        (mlc.GRADIENT_ACCUMULATION_STEPS, 1),
        (mlc.OPT_NAME, mlc.SGD),
        (mlc.OPT_BASE_LR, schedule.base_lr),
        (mlc.OPT_WEIGHT_DECAY, solver.WEIGHT_DECAY),
        (mlc.OPT_LR_WARMUP_STEPS, schedule.warmup_steps),
        (mlc.OPT_LR_WARMUP_FACTOR, schedule.warmup_factor),
        (mlc.OPT_LR_DECAY_FACTOR, solver.DECAY_FACTOR),
        (mlc.OPT_LR_DECAY_STEPS, list(schedule.decay_steps)),
        (mlc.NUM_IMAGE_CANDIDATES, options.rpn_post_nms_top_n_train * args.batch_size),
        (mlc.MIN_IMAGE_SIZE, options.min_size),
        (mlc.MAX_IMAGE_SIZE, options.max_size),
    ):
        log.event(key, value)


def _loaders(layout: CocoLayout, args: argparse.Namespace, workers: Workers
             ) -> tuple[CocoInstances, DataLoader, CocoInstances, DataLoader, GroupedBatchSampler]:
    train_set = CocoInstances(layout.images_dir("train"), layout.annotations("train"), train=True)
    val_set = CocoInstances(layout.images_dir("val"), layout.annotations("val"), train=False)
    if len(train_set) == 0:
        raise DatasetError(f"{layout.annotations('train')}: no training image has a usable annotation")
    sampler = GroupedBatchSampler(train_set, args.batch_size, seed=args.seed,
                                  rank=workers.rank, world_size=workers.world_size)
    persistent = args.loader_workers > 0
    train_loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate,
                              num_workers=args.loader_workers, persistent_workers=persistent)
    shard = Subset(val_set, range(workers.rank, len(val_set), workers.world_size))
    val_loader = DataLoader(shard, batch_size=args.eval_batch_size, collate_fn=collate,
                            num_workers=args.loader_workers)
    return train_set, train_loader, val_set, val_loader, sampler


def run(args: argparse.Namespace, workers: Workers, log: MLLog) -> RunReport:
    """One training run; raises on faults (the caller logs run_stop aborted)."""
    report = RunReport()
    log.event(mlc.CACHE_CLEAR, _clear_caches() if workers.is_main else False)
    log.start(mlc.INIT_START)
    device_name = torch.cuda.get_device_name(workers.device) if workers.device.type == "cuda" else "CPU"
    log.submission(BENCHMARK, org=args.org, platform=args.platform or f"{workers.world_size}x{device_name}",
                   division=args.division, status=args.status)
    log.event(mlc.SEED, args.seed)
    _seed_everything(distributed.worker_seeds(args.seed, workers.world_size)[workers.rank])
    report.global_batch = args.batch_size * workers.world_size
    schedule = _schedule(args, report.global_batch)
    if not solver.lr_allowed(schedule.base_lr, report.global_batch) and args.division == "closed":
        print(f"warning: base LR {schedule.base_lr} is not one the closed division allows "
              f"for global batch {report.global_batch}", file=sys.stderr)
    options = _model_options(args)
    _log_hyperparameters(log, args, schedule, report.global_batch, options)
    layout = CocoLayout(args.data_dir)
    missing = [str(p) for p in layout.required() if not p.exists()]
    if missing:
        raise DatasetError(f"dataset incomplete in {args.data_dir}: missing {', '.join(missing)} "
                           "(run `invoke maskrcnn.prepare`)")
    model = build_model(layout.weights, options).to(workers.device)
    optimizer = solver.build_optimizer(model, schedule.base_lr)
    scheduler = solver.build_scheduler(optimizer, schedule)
    scaler = torch.amp.GradScaler(workers.device.type, enabled=workers.device.type == "cuda")
    first_epoch, iteration = 1, 0
    if args.checkpoint is not None and args.checkpoint.exists():
        resumed = checkpoint.load(args.checkpoint, model=model, optimizer=optimizer, scheduler=scheduler,
                                  scaler=scaler, seed=args.seed)
        first_epoch, iteration = resumed.epoch + 1, resumed.iteration
    train_model: torch.nn.Module = model
    if workers.distributed:
        device_ids = [workers.local_rank] if workers.device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=device_ids)
    max_iters = args.max_iters if args.max_iters is not None else schedule.max_iters
    log.end(mlc.INIT_STOP)
    log.start(mlc.RUN_START, metadata={"resumed_from_epoch": first_epoch - 1} if first_epoch > 1 else None)
    train_set, train_loader, val_set, val_loader, sampler = _loaders(layout, args, workers)
    log.event(mlc.TRAIN_SAMPLES, len(train_set))
    log.event(mlc.EVAL_SAMPLES, len(val_set))
    last_epoch = args.max_epochs if args.max_epochs is not None else sys.maxsize
    epoch = first_epoch
    while epoch <= last_epoch and iteration < max_iters:
        sampler.set_epoch(epoch)
        log.start(mlc.EPOCH_START, metadata={mlc.EPOCH_NUM: epoch})
        stats = train_one_epoch(train_model, optimizer, scheduler, train_loader, workers=workers, scaler=scaler,
                                iteration=iteration, max_iterations=max_iters, epoch=epoch)
        iteration += stats.iterations
        report.losses += stats.losses
        log.end(mlc.EPOCH_STOP, metadata={mlc.EPOCH_NUM: epoch, "loss": stats.mean_loss,
                                          "iterations": stats.iterations})
        if args.checkpoint is not None and workers.is_main:
            checkpoint.save(args.checkpoint, model=model, optimizer=optimizer, scheduler=scheduler,
                            scaler=scaler, epoch=epoch, iteration=iteration, seed=args.seed)
        log.start(mlc.EVAL_START, metadata={mlc.EPOCH_NUM: epoch})
        accuracy = evaluate(model, val_loader, val_set, workers)
        log.event(mlc.EVAL_ACCURACY, accuracy, metadata={mlc.EPOCH_NUM: epoch})
        log.end(mlc.EVAL_STOP, metadata={mlc.EPOCH_NUM: epoch})
        report.accuracy.append(accuracy)
        report.epochs, report.iterations = epoch, iteration
        if reached_target(accuracy):
            report.status = mlc.SUCCESS
            break
        epoch += 1
    if report.status != mlc.SUCCESS:
        report.reason = f"quality target not reached in {report.iterations} iterations"
    log.end(mlc.RUN_STOP, metadata={mlc.STATUS: report.status, **({"reason": report.reason} if report.reason else {})})
    return report


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise RunInterruptedError(signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    workers = distributed.init()
    log = MLLog.open(args.log_file, rank=workers.rank)
    try:
        report = run(args, workers, log)
    except (RunInterruptedError, DatasetError, WeightsError, NonFiniteLossError, checkpoint.CheckpointError) as error:
        print(f"maskrcnn (rank {workers.rank}): {error}", file=sys.stderr, flush=True)
        log.end(mlc.RUN_STOP, metadata={mlc.STATUS: mlc.ABORTED, "reason": str(error)})
        return 128 + error.signum if isinstance(error, RunInterruptedError) else EXIT_FAULT
    finally:
        log.close()
        distributed.shutdown(workers)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if workers.is_main:
        print(f"maskrcnn: {report.status} after {report.epochs} epoch(s), {report.iterations} iterations; "
              f"last accuracy {report.accuracy[-1] if report.accuracy else None}", flush=True)
    return 0 if report.status == mlc.SUCCESS else EXIT_BELOW_TARGET


if __name__ == "__main__":
    sys.exit(main())
