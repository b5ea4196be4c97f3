"""What a Mask R-CNN run will do, decided from its options before torch or the dataset is touched.

`from_args(args, workers)` gives the global batch, its schedule (`schedule.schedule_for`, overridable),
the model options and the division; `hyperparameters(config)` lists the MLPerf log events a run with
that configuration writes, from the same values it trains with, so `--dry-run` prints what a run logs.

Division: `open` while the backbone is torchvision's ImageNet ResNet-50; `closed` only with the
reference's Caffe2 `R-50.pkl` (`--backbone caffe2`), the weights the closed division requires.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Literal

from common.mlperf.mllog import MLLog
from common.mlperf.mllog import constants as mlc
from object_detection.maskrcnn.schedule import (
    DECAY_FACTOR,
    MAX_EPOCHS,
    Schedule,
    ScheduleError,
    lr_allowed,
    schedule_for,
)

BENCHMARK = "maskrcnn"
Backbone = Literal["torchvision", "caffe2"]
BACKBONES: tuple[Backbone, ...] = ("torchvision", "caffe2")
Division = Literal["closed", "open"]
DEFAULT_GLOBAL_BATCH = 96  # an RCP batch: 12 images per GPU on 8 GPUs
# torchvision keeps RPN proposals per image; without an RCP budget, the rules' 1000 x images per chip.
PROPOSALS_PER_IMAGE = 1000
CLOSED_IMAGE_SIZES = (800, 1333)  # min and max image size, fixed in the closed division
MOMENTUM = 0.9  # SGD's, as the solver uses them and the log reports them
WEIGHT_DECAY = 1e-4


class ConfigError(ValueError):
    """The options do not make a run (or not one of the division asked for)."""


@dataclass(frozen=True)
class ModelOptions:
    """Backbone, sizes and proposal counts; the defaults are the MLPerf ones."""

    backbone: Backbone = "torchvision"
    min_size: int = 800
    max_size: int = 1333
    rpn_post_nms_top_n_train: int = PROPOSALS_PER_IMAGE  # per image
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    box_detections_per_img: int = 100
    box_score_thresh: float = 0.05
    box_batch_size_per_image: int = 512
    # Box deltas leave the heads in fp32 under autocast, so boxes are decoded in fp32 (model.py);
    # False keeps torchvision's half-precision decoding, to measure what it costs.
    fp32_box_decoding: bool = True
    # Speed only (tests/maskrcnn/test_speed.py: the same losses either way): frozen BatchNorm folded into
    # the convolution before it; convolutions in channels-last layout.
    fold_frozen_bn: bool = True
    channels_last: bool = False


@dataclass(frozen=True)
class RunConfig:
    global_batch: int
    workers: int
    schedule: Schedule
    model: ModelOptions
    division: Division
    max_epochs: int
    max_iters: int | None

    @property
    def images_per_worker(self) -> int:
        return self.global_batch // self.workers

    @property
    def image_candidates(self) -> int:
        """RPN proposals kept per worker's batch (MLPerf's num_image_candidates)."""
        return self.model.rpn_post_nms_top_n_train * self.images_per_worker


def _schedule(args: argparse.Namespace, global_batch: int) -> Schedule:
    rules = schedule_for(global_batch)
    return Schedule(
        base_lr=rules.base_lr if args.base_lr is None else args.base_lr,
        warmup_steps=rules.warmup_steps if args.warmup_steps is None else args.warmup_steps,
        warmup_factor=rules.warmup_factor if args.warmup_factor is None else args.warmup_factor,
        warmup_method=args.warmup_method or rules.warmup_method,
        decay_steps=tuple(args.decay_steps) if args.decay_steps else rules.decay_steps,
        image_candidates=rules.image_candidates,
    )


def _proposals_per_image(args: argparse.Namespace, schedule: Schedule, images_per_worker: int) -> int:
    """The RCP's proposal budget spread over a worker's images where it divides evenly."""
    if args.proposals_per_image is not None:
        return args.proposals_per_image
    budget = schedule.image_candidates
    if budget is not None and budget % images_per_worker == 0:
        return budget // images_per_worker
    return PROPOSALS_PER_IMAGE


def from_args(args: argparse.Namespace, workers: int) -> RunConfig:
    if workers < 1:
        raise ConfigError(f"a run needs at least one worker, not {workers}")
    if args.global_batch_size < 1 or args.global_batch_size % workers:
        raise ConfigError(f"--global-batch-size {args.global_batch_size} does not split over {workers} worker(s)")
    try:
        schedule = _schedule(args, args.global_batch_size)
    except ScheduleError as exc:
        raise ConfigError(str(exc)) from exc
    division: Division = args.division or ("closed" if args.backbone == "caffe2" else "open")
    if division == "closed":
        if args.backbone != "caffe2":
            raise ConfigError("--division closed needs the reference's backbone (--backbone caffe2, weights/R-50.pkl); "
                              "torchvision's ImageNet ResNet-50 makes it an open-division run")
        if (args.min_size, args.max_size) != CLOSED_IMAGE_SIZES:
            raise ConfigError(f"image sizes {args.min_size}/{args.max_size}: the closed division fixes them at "
                              f"{CLOSED_IMAGE_SIZES[0]}/{CLOSED_IMAGE_SIZES[1]}")
        if not lr_allowed(schedule.base_lr, args.global_batch_size):
            raise ConfigError(f"base LR {schedule.base_lr} is not one the closed division allows for global batch "
                              f"{args.global_batch_size} (0.02 x K, or 0.02 / K below 16)")
    model = ModelOptions(
        backbone=args.backbone, min_size=args.min_size, max_size=args.max_size,
        rpn_post_nms_top_n_train=_proposals_per_image(args, schedule, args.global_batch_size // workers),
        rpn_pre_nms_top_n_test=args.test_proposals, rpn_post_nms_top_n_test=args.test_proposals,
        box_detections_per_img=args.detections_per_image, box_batch_size_per_image=args.roi_samples)
    return RunConfig(args.global_batch_size, workers, schedule, model, division,
                     max_epochs=MAX_EPOCHS if args.max_epochs is None else args.max_epochs, max_iters=args.max_iters)


def hyperparameters(config: RunConfig) -> list[tuple[str, Any, dict[str, Any] | None]]:
    """(key, value, metadata) of every hyper-parameter line the run logs."""
    s = config.schedule
    return [
        (mlc.GLOBAL_BATCH_SIZE, config.global_batch, None),
        (mlc.GRADIENT_ACCUMULATION_STEPS, 1, None),
        (mlc.OPT_NAME, mlc.SGD, None),
        (mlc.OPT_BASE_LR, s.base_lr, None),
        (mlc.OPT_WEIGHT_DECAY, WEIGHT_DECAY, None),
        (mlc.OPT_LR_WARMUP_STEPS, s.warmup_steps, None),
        (mlc.OPT_LR_WARMUP_FACTOR, s.warmup_factor, {"method": s.warmup_method}),
        (mlc.OPT_LR_DECAY_FACTOR, DECAY_FACTOR, None),
        (mlc.OPT_LR_DECAY_STEPS, list(s.decay_steps), None),
        (mlc.NUM_IMAGE_CANDIDATES, config.image_candidates, None),
        (mlc.MIN_IMAGE_SIZE, config.model.min_size, None),
        (mlc.MAX_IMAGE_SIZE, config.model.max_size, None),
    ]


def describe(config: RunConfig) -> str:
    """The configuration in words, for people reading a dry run."""
    weights = ("the reference's Caffe2 R-50.pkl" if config.model.backbone == "caffe2"
               else "torchvision's ImageNet ResNet-50")
    cap = f", at most {config.max_iters} iterations" if config.max_iters is not None else ""
    return (f"division {config.division} (backbone: {weights}); {config.workers} worker(s) x "
            f"{config.images_per_worker} images, {config.model.rpn_post_nms_top_n_train} RPN proposals per "
            f"training image; {config.schedule.warmup_method} warmup; evaluation after every epoch until the target, "
            f"at most {config.max_epochs} epochs{cap}")


def log_configuration(log: MLLog, args: argparse.Namespace, config: RunConfig, platform: str) -> None:
    """The submission and hyper-parameter lines of a run (and of its dry run)."""
    log.submission(BENCHMARK, org=args.org, platform=args.platform or platform, division=config.division,
                   status=args.status)
    if args.seed is not None:
        log.event("seed", args.seed)
    for key, value, metadata in hyperparameters(config):
        log.event(key, value, metadata=metadata)
