"""What a Mask R-CNN run will do, decided from its options before torch or the dataset is touched.

`from_args(args, workers)` gives the global batch, its schedule (`schedule.schedule_for`, overridable),
the model options and the division; `hyperparameters(config)` lists the MLPerf log events a run with
that configuration writes, from the same values it trains with, so `--dry-run` prints what a run logs.

Division: `closed` only when every setting the rules fix is the reference's: the Caffe2 `R-50.pkl`
backbone (`--backbone caffe2`), the image sizes, a base LR and decay steps of the rules' formulas, 1000
RPN proposals per image in training and at evaluation, 512 sampled RoIs and 100 detections per image.
Otherwise `open`, and `departures` names each setting that made it so (`--division closed` then exits 2).
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
    decay_steps_allowed,
    lr_allowed,
    schedule_for,
)

BENCHMARK = "maskrcnn"
Backbone = Literal["torchvision", "caffe2"]
BACKBONES: tuple[Backbone, ...] = ("torchvision", "caffe2")
Division = Literal["closed", "open"]
DEFAULT_GLOBAL_BATCH = 96  # an RCP batch: 12 images per GPU on 8 GPUs
# The reference keeps the top 1000 x images per GPU of a GPU's batch (FPN_POST_NMS_TOP_N_TRAIN, the RCPs'
# num_image_candidates); torchvision keeps the top N of each image: 1000 each, the rules' 1000 x images per chip.
PROPOSALS_PER_IMAGE = 1000
# The settings the closed rules fix (training_rules: every hyper-parameter not in the table is the reference's).
CLOSED_IMAGE_SIZES = (800, 1333)  # min and max image size
REFERENCE_TEST_PROPOSALS = 1000  # RPN proposals per image at evaluation, before and after NMS
REFERENCE_DETECTIONS = 100  # detections per image
REFERENCE_ROI_SAMPLES = 512  # RoIs sampled per image for the box head's loss
MOMENTUM = 0.9  # SGD's, as the solver uses them and the log reports them
WEIGHT_DECAY = 1e-4


# The metadata key of submission_division that lists the settings making a run open (results.package reads it).
OPEN_BECAUSE = "open_because"


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
    # What makes the run open rather than closed: one phrase per setting, naming its option.
    departures: tuple[str, ...] = ()

    @property
    def images_per_worker(self) -> int:
        return self.global_batch // self.workers

    @property
    def image_candidates(self) -> int:
        """RPN proposals kept per worker's batch, as the reference logs num_image_candidates."""
        return self.model.rpn_post_nms_top_n_train * self.images_per_worker


def _schedule(args: argparse.Namespace, global_batch: int) -> Schedule:
    rules = schedule_for(global_batch)
    return Schedule(
        base_lr=rules.base_lr if args.base_lr is None else args.base_lr,
        warmup_steps=rules.warmup_steps if args.warmup_steps is None else args.warmup_steps,
        warmup_factor=rules.warmup_factor if args.warmup_factor is None else args.warmup_factor,
        warmup_method=args.warmup_method or rules.warmup_method,
        decay_steps=tuple(args.decay_steps) if args.decay_steps else rules.decay_steps,
    )


def departures(global_batch: int, schedule: Schedule, model: ModelOptions) -> tuple[str, ...]:
    """Each setting the closed rules fix that is not the reference's, naming its option."""
    found = []
    if model.backbone != "caffe2":
        found.append(f"--backbone {model.backbone} (the reference's is R-50.pkl: --backbone caffe2)")
    if (model.min_size, model.max_size) != CLOSED_IMAGE_SIZES:
        found.append(f"--min-size {model.min_size} --max-size {model.max_size} (fixed at "
                     f"{CLOSED_IMAGE_SIZES[0]}/{CLOSED_IMAGE_SIZES[1]})")
    if not lr_allowed(schedule.base_lr, global_batch):
        found.append(f"--base-lr {schedule.base_lr} (0.02 x K, or 0.02 / K below batch 16)")
    if not decay_steps_allowed(schedule.decay_steps, global_batch):
        found.append(f"--decay-steps {' '.join(map(str, schedule.decay_steps))} ((60000, 80000) x (1 + K / 10) x "
                     f"16 / {global_batch} for an integer K)")
    if model.rpn_post_nms_top_n_train != PROPOSALS_PER_IMAGE:
        found.append(f"--proposals-per-image {model.rpn_post_nms_top_n_train} (the reference keeps "
                     f"{PROPOSALS_PER_IMAGE} per image)")
    if model.rpn_post_nms_top_n_test != REFERENCE_TEST_PROPOSALS:
        found.append(f"--test-proposals {model.rpn_post_nms_top_n_test} (the reference keeps "
                     f"{REFERENCE_TEST_PROPOSALS} per image)")
    if model.box_detections_per_img != REFERENCE_DETECTIONS:
        found.append(f"--detections-per-image {model.box_detections_per_img} (the reference keeps "
                     f"{REFERENCE_DETECTIONS})")
    if model.box_batch_size_per_image != REFERENCE_ROI_SAMPLES:
        found.append(f"--roi-samples {model.box_batch_size_per_image} (the reference samples "
                     f"{REFERENCE_ROI_SAMPLES} per image)")
    return tuple(found)


def from_args(args: argparse.Namespace, workers: int) -> RunConfig:
    if workers < 1:
        raise ConfigError(f"a run needs at least one worker, not {workers}")
    if args.global_batch_size < 1 or args.global_batch_size % workers:
        raise ConfigError(f"--global-batch-size {args.global_batch_size} does not split over {workers} worker(s)")
    try:
        schedule = _schedule(args, args.global_batch_size)
    except ScheduleError as exc:
        raise ConfigError(str(exc)) from exc
    model = ModelOptions(
        backbone=args.backbone, min_size=args.min_size, max_size=args.max_size,
        rpn_post_nms_top_n_train=PROPOSALS_PER_IMAGE if args.proposals_per_image is None else args.proposals_per_image,
        rpn_pre_nms_top_n_test=args.test_proposals, rpn_post_nms_top_n_test=args.test_proposals,
        box_detections_per_img=args.detections_per_image, box_batch_size_per_image=args.roi_samples)
    open_because = departures(args.global_batch_size, schedule, model)
    if args.division == "closed" and open_because:
        raise ConfigError(f"--division closed, but the rules fix what this run changes: {'; '.join(open_because)}")
    division: Division = args.division or ("open" if open_because else "closed")
    return RunConfig(args.global_batch_size, workers, schedule, model, division,
                     max_epochs=MAX_EPOCHS if args.max_epochs is None else args.max_epochs, max_iters=args.max_iters,
                     departures=open_because)


def division_metadata(config: RunConfig) -> dict[str, list[str]] | None:
    """What the log's submission_division carries: the settings that made the run open, as options."""
    return {OPEN_BECAUSE: list(config.departures)} if config.departures else None


def division_line(config: RunConfig) -> str:
    """The division in one line, with the settings that made it open."""
    if config.division == "closed":
        return "division closed: every setting the rules fix is the reference's"
    if not config.departures:
        return "division open (--division open)"
    return f"division open: {'; '.join(config.departures)}"


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
    return (f"backbone: {weights}; {config.workers} worker(s) x {config.images_per_worker} images, "
            f"{config.model.rpn_post_nms_top_n_train} RPN proposals per training image ({config.image_candidates} "
            f"per worker's batch); {config.schedule.warmup_method} warmup; evaluation after every epoch until the "
            f"target, at most {config.max_epochs} epochs{cap}")


def log_configuration(log: MLLog, args: argparse.Namespace, config: RunConfig, platform: str) -> None:
    """The submission and hyper-parameter lines of a run (and of its dry run)."""
    log.submission(BENCHMARK, org=args.org, platform=args.platform or platform, division=config.division,
                   status=args.status, division_metadata=division_metadata(config))
    if args.seed is not None:
        log.event("seed", args.seed)
    for key, value, metadata in hyperparameters(config):
        log.event(key, value, metadata=metadata)
