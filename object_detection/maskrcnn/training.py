"""One Mask R-CNN training run, as `train.py` configured it: the MLPerf log, the epoch/eval loop, resume.

`main(args, config) -> exit code` adds the signal handling and the torchrun process group;
`run(args, config, workers, log) -> RunReport` is the same run for callers in-process.
Each epoch reseeds the augmentation from the run's seed and the epoch, so a run resumed from its
checkpoint (weights, optimizer, schedule position) trains as the uninterrupted run would have
(with --loader-workers 0: the loader's worker processes keep their own generators).
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
from dataclasses import dataclass, field, replace
from types import FrameType

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from common.mlperf.mllog import MLLog
from common.mlperf.mllog import constants as mlc
from common.mlperf.page_cache import flush_page_cache
from object_detection.layout import CocoLayout
from object_detection.maskrcnn import checkpoint, distributed, solver
from object_detection.maskrcnn.backbone import WeightsError
from object_detection.maskrcnn.config import RunConfig, log_configuration
from object_detection.maskrcnn.data import CocoInstances, DatasetError, GroupedBatchSampler, collate
from object_detection.maskrcnn.distributed import Workers
from object_detection.maskrcnn.engine import NonFiniteLossError, amp_dtype, train_one_epoch
from object_detection.maskrcnn.evaluation import Evaluation, until_target
from object_detection.maskrcnn.model import build_model
from object_detection.maskrcnn.scoring import Scorer

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
    target_epoch: int | None = None  # the first epoch whose evaluation reached the target


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _epoch_seed(worker_seed: int, epoch: int) -> int:
    return random.Random(f"{worker_seed}-{epoch}").randrange(2**31)


def _loaders(layout: CocoLayout, args: argparse.Namespace, config: RunConfig, workers: Workers
             ) -> tuple[CocoInstances, DataLoader, CocoInstances, DataLoader, GroupedBatchSampler]:
    train_set = CocoInstances(layout.images_dir("train"), layout.annotations("train"), train=True)
    val_set = CocoInstances(layout.images_dir("val"), layout.annotations("val"), train=False)
    if len(train_set) == 0:
        raise DatasetError(f"{layout.annotations('train')}: no training image has a usable annotation")
    sampler = GroupedBatchSampler(train_set, config.images_per_worker, seed=args.seed,
                                  rank=workers.rank, world_size=workers.world_size)
    persistent = args.loader_workers > 0
    pin = workers.device.type == "cuda"  # so that copies to the GPU are asynchronous
    train_loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate, pin_memory=pin,
                              num_workers=args.loader_workers, persistent_workers=persistent)
    shard = Subset(val_set, range(workers.rank, len(val_set), workers.world_size))
    val_loader = DataLoader(shard, batch_size=args.eval_batch_size, collate_fn=collate, pin_memory=pin,
                            num_workers=args.loader_workers)
    return train_set, train_loader, val_set, val_loader, sampler


def run(args: argparse.Namespace, config: RunConfig, workers: Workers, log: MLLog) -> RunReport:
    """One training run; raises on faults (the caller logs run_stop aborted)."""
    report = RunReport(global_batch=config.global_batch)
    # Each node's first worker flushes the node's cache (the dataset's pages at least); true only if every node did.
    flush = flush_page_cache(args.data_dir) if workers.local_rank == 0 else None
    flushed = distributed.all_true(workers, flush is None or flush.done)
    log.event(mlc.CACHE_CLEAR, flushed, metadata=flush.metadata() if flush else None)
    log.start(mlc.INIT_START)
    device_name = torch.cuda.get_device_name(workers.device) if workers.device.type == "cuda" else "CPU"
    log_configuration(log, args, config, f"{workers.world_size}x{device_name}")
    worker_seed = distributed.worker_seeds(args.seed, workers.world_size)[workers.rank]
    _seed_everything(worker_seed)
    layout = CocoLayout(args.data_dir)
    missing = [str(p) for p in layout.required(config.model.backbone) if not p.exists()]
    if missing:
        raise DatasetError(f"dataset incomplete in {args.data_dir}: missing {', '.join(missing)} "
                           "(run `invoke maskrcnn.prepare`)")
    scorer = Scorer(layout.annotations("val"), args.eval_processes) if workers.is_main else None
    try:
        if scorer is not None:
            scorer.warm_up()  # its processes start before the clock
        return _train(args, config, workers, log, layout, scorer, worker_seed, report)
    finally:
        if scorer is not None:
            scorer.close()


def _train(args: argparse.Namespace, config: RunConfig, workers: Workers, log: MLLog, layout: CocoLayout,
           scorer: Scorer | None, worker_seed: int, report: RunReport) -> RunReport:
    channels_last = workers.device.type == "cuda" if args.channels_last is None else args.channels_last
    options = replace(config.model, channels_last=channels_last)
    model = build_model(layout.backbone_weights(config.model.backbone), options).to(workers.device)
    optimizer = solver.build_optimizer(model, config.schedule.base_lr)
    scheduler = solver.build_scheduler(optimizer, config.schedule)
    scaler = torch.amp.GradScaler(workers.device.type, enabled=amp_dtype(workers.device) is not None)
    first_epoch, iteration = 1, 0
    if args.checkpoint is not None and args.checkpoint.exists():
        resumed = checkpoint.load(args.checkpoint, model=model, optimizer=optimizer, scheduler=scheduler,
                                  scaler=scaler, seed=args.seed)
        first_epoch, iteration = resumed.epoch + 1, resumed.iteration
    train_model: torch.nn.Module = model
    if workers.distributed:
        device_ids = [workers.local_rank] if workers.device.type == "cuda" else None
        # Frozen BatchNorm's statistics never change: no broadcast of buffers before every forward.
        train_model = DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False,
                                              gradient_as_bucket_view=True)
    max_iters = config.max_iters if config.max_iters is not None else sys.maxsize
    log.end(mlc.INIT_STOP)
    log.start(mlc.RUN_START, metadata={"resumed_from_epoch": first_epoch - 1} if first_epoch > 1 else None)
    train_set, train_loader, val_set, val_loader, sampler = _loaders(layout, args, config, workers)
    log.event(mlc.TRAIN_SAMPLES, len(train_set))
    log.event(mlc.EVAL_SAMPLES, len(val_set))
    evaluation = Evaluation(scorer, val_loader, val_set.label_to_category, workers, amp_dtype(workers.device))

    def reached(wait: bool = False) -> bool:
        """Logs the epochs scored since the last call, in order, up to the first that reached the target."""
        logged, target_epoch = until_target(evaluation.results(wait))
        for scored_epoch, accuracy in logged:
            log.event(mlc.EVAL_ACCURACY, accuracy, metadata={mlc.EPOCH_NUM: scored_epoch})
            report.accuracy.append(accuracy)
        if target_epoch is not None:
            report.status, report.target_epoch = mlc.SUCCESS, target_epoch
        return target_epoch is not None

    epoch = first_epoch
    while epoch <= config.max_epochs and iteration < max_iters:
        sampler.set_epoch(epoch)
        _seed_everything(_epoch_seed(worker_seed, epoch))
        log.start(mlc.EPOCH_START, metadata={mlc.EPOCH_NUM: epoch})
        stats = train_one_epoch(train_model, optimizer, scheduler, train_loader, workers=workers, scaler=scaler,
                                iteration=iteration, max_iterations=max_iters, epoch=epoch,
                                should_stop=reached, sync_every=args.sync_every)
        iteration += stats.iterations
        report.losses += stats.losses
        report.epochs, report.iterations = epoch, iteration
        log.end(mlc.EPOCH_STOP, metadata={mlc.EPOCH_NUM: epoch, "loss": stats.mean_loss,
                                          "iterations": stats.iterations})
        if report.status == mlc.SUCCESS:  # an earlier epoch's evaluation came in during this one
            break
        if args.checkpoint is not None and workers.is_main:
            checkpoint.save(args.checkpoint, model=model, optimizer=optimizer, scheduler=scheduler,
                            scaler=scaler, epoch=epoch, iteration=iteration, seed=args.seed)
        log.start(mlc.EVAL_START, metadata={mlc.EPOCH_NUM: epoch})
        evaluation.start(model, epoch)
        log.end(mlc.EVAL_STOP, metadata={mlc.EPOCH_NUM: epoch})
        if reached():
            break
        epoch += 1
    if report.status != mlc.SUCCESS and not reached(wait=True):
        report.reason = f"quality target not reached in {report.epochs} epoch(s), {report.iterations} iterations"
    log.end(mlc.RUN_STOP, metadata={mlc.STATUS: report.status, **({"reason": report.reason} if report.reason else {})})
    return report


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise RunInterruptedError(signum)


def _say_what_was_trained(report: RunReport, config: RunConfig, workers: Workers) -> None:
    """Every worker says what it trained (a cluster run's subs too: their output reaches main1's), rank 0
    also how the run ended, and none leaves before all have said it: torchrun stops the other workers as
    soon as one exits non-zero (a run below the target), which would cut their lines."""
    print(f"maskrcnn (rank {workers.rank} of {workers.world_size}): trained {report.epochs} epoch(s), "
          f"{report.iterations} iterations of {config.images_per_worker} image(s)", flush=True)
    if workers.is_main:
        reached = f"target reached by epoch {report.target_epoch}; " if report.target_epoch else ""
        print(f"maskrcnn: {report.status} after {report.epochs} epoch(s), {report.iterations} iterations; "
              f"{reached}last accuracy {report.accuracy[-1] if report.accuracy else None}", flush=True)
    distributed.barrier(workers)


def main(args: argparse.Namespace, config: RunConfig) -> int:
    previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    workers = distributed.init()
    log = MLLog.open(args.log_file, rank=workers.rank)
    try:
        report = run(args, config, workers, log)
        _say_what_was_trained(report, config, workers)
    except (RunInterruptedError, DatasetError, WeightsError, NonFiniteLossError, checkpoint.CheckpointError) as error:
        print(f"maskrcnn (rank {workers.rank}): {error}", file=sys.stderr, flush=True)
        log.end(mlc.RUN_STOP, metadata={mlc.STATUS: mlc.ABORTED, "reason": str(error)})
        return 128 + error.signum if isinstance(error, RunInterruptedError) else EXIT_FAULT
    finally:
        log.close()
        distributed.shutdown(workers)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if report.status == mlc.SUCCESS else EXIT_BELOW_TARGET
