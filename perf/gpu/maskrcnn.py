"""Mask R-CNN on one GPU: training images/s at COCO resolution with AMP, evaluation seconds per 5000 images,
peak memory, and the projected time to train on 8 GPUs.

    python perf/gpu/maskrcnn.py [--json out.json]          # one H200: about 3-5 minutes
    python perf/gpu/maskrcnn.py --tiny --device cpu        # the same code at a toy size (tests)

Needs torch and torchvision, and the trainer's own packages (mlperf-logging, pycocotools, tqdm,
faster-coco-eval), which a bare GPU machine may lack: carry them as wheels (perf/gpu/README.md). The
data is the COCO-sized sample (object_detection.sample.COCO_SIZED: 640 x 480 and the like, resized by the
model to 800 x 1333 as COCO is), written to a temporary folder. What it measures, in this order:
1. training at the default per-GPU batch (12: global batch 96 on 8 GPUs) with fp16 autocast and
   GradScaler, through the trainer's loader (8 workers, pinned memory): images/s of the trainer
   (`engine.train_one_epoch`, fused SGD, folded frozen BatchNorm) in channels-last layout and in NCHW,
   and of a plain loop over torchvision's MaskRCNN with the reference's settings that reads the loss
   every iteration; the loader alone; peak GPU memory of each;
2. evaluation: inference images/s at batch 8 under autocast, with the score threshold at 0 so every
   image carries the 100 detections a trained model gives it (an untrained one has none above 0.05);
   and the background scorer (scoring.Scorer, `--eval-processes` processes) on made-up detections of
   the val images, 100 per image, as seconds per 5000 images;
3. the projection for 8 GPUs at global batch 96: the RCP's mean epochs to converge (mlperf-logging's
   rcps_maskrcnn.json) x (117,266 training images at 8 x this GPU's images/s + the blocking part of an
   evaluation, inference of 625 images), plus the last evaluation's scoring; perfect scaling is
   assumed (no all-reduce time), so it is a lower bound. Published v3.1 reference point: about 185
   images/s per H100 (Dell XE9680, 15 epochs of 79 s, 19.9 minutes).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
for path in (REPO_ROOT, REPO_ROOT / "perf"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from maskrcnn_throughput import _plain_model  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from object_detection.layout import CocoLayout  # noqa: E402
from object_detection.maskrcnn import solver  # noqa: E402
from object_detection.maskrcnn.config import ModelOptions  # noqa: E402
from object_detection.maskrcnn.data import CocoInstances, GroupedBatchSampler, collate  # noqa: E402
from object_detection.maskrcnn.distributed import Workers  # noqa: E402
from object_detection.maskrcnn.engine import amp_dtype, images_on, train_one_epoch  # noqa: E402
from object_detection.maskrcnn.evaluation import detect  # noqa: E402
from object_detection.maskrcnn.made_up import made_up_detections  # noqa: E402
from object_detection.maskrcnn.model import build_model  # noqa: E402
from object_detection.maskrcnn.schedule import RULESET, Schedule  # noqa: E402
from object_detection.maskrcnn.scoring import Scorer  # noqa: E402
from object_detection.sample import COCO_SIZED, SMALL, build_split, build_weights  # noqa: E402

COCO_TRAIN_IMAGES = 117_266  # train2017 after the reference's filtering (its log's train_samples)
COCO_VAL_IMAGES = 5000
GPUS = 8
GLOBAL_BATCH = 96
PUBLISHED_H100_IMAGES_PER_S = 185.0


def rcp_epochs(global_batch: int) -> float:
    table = json.loads((resources.files("mlperf_logging") / "rcp_checker" / f"training_{RULESET}" /
                        "rcps_maskrcnn.json").read_text())
    row = next(r for r in table.values() if r["BS"] == global_batch)
    return statistics.mean(row["Epochs to converge"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0


def _dataset(layout: CocoLayout) -> CocoInstances:
    return CocoInstances(layout.images_dir("train"), layout.annotations("train"), train=True)


def _loader(layout: CocoLayout, args: argparse.Namespace, device: torch.device) -> DataLoader:
    dataset = _dataset(layout)
    sampler = GroupedBatchSampler(dataset, args.batch_size, seed=0)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=args.loader_workers,
                      pin_memory=device.type == "cuda", persistent_workers=args.loader_workers > 0)


def _repeat(loader: DataLoader, count: int) -> list:
    """`count` batches, the loader's epochs over again if it has fewer (kept on the host, pinned)."""
    batches: list = []
    while len(batches) < count:
        batches += list(loader)
    return batches[:count]


def _trainer(kind: str, layout: CocoLayout, options: ModelOptions, args: argparse.Namespace,
             device: torch.device) -> Callable[[list], None]:
    """One training loop over given batches: the trainer's (channels-last or NCHW) or the plain one."""
    dtype = amp_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is not None)
    if kind == "plain":
        model = _plain_model(layout.weights, argparse.Namespace(min_size=options.min_size,
                                                                  max_size=options.max_size)).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)

        def plain(batches: list) -> None:
            model.train()
            for cpu_images, cpu_targets in batches:
                images = [i.to(device).float() / 255 for i in cpu_images]
                targets = [{k: v.to(device) for k, v in t.items()} for t in cpu_targets]
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    loss = sum(model(images, targets).values())
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                _ = loss.item()  # what a loop that logs its loss waits for

        return plain
    ours = build_model(layout.weights, replace(options, channels_last=kind == "ours")).to(device)
    sgd = solver.build_optimizer(ours, args.lr)
    scheduler = solver.build_scheduler(sgd, Schedule(args.lr, 0, 1.0, "linear", (10**6, 10**6 + 1)))
    workers = Workers(0, 1, 0, device)

    def trainer(batches: list) -> None:
        train_one_epoch(ours, sgd, scheduler, batches, workers=workers, scaler=scaler, iteration=0,
                        max_iterations=len(batches), epoch=1)

    return trainer


def training(layout: CocoLayout, options: ModelOptions, args: argparse.Namespace, device: torch.device) -> dict:
    loader = _loader(layout, args, device)
    figures: dict[str, float] = {}
    started = time.perf_counter()
    loaded = _repeat(loader, args.warmup + args.steps)
    figures["loader_images_per_s"] = len(loaded) * args.batch_size / (time.perf_counter() - started)
    for kind in ("ours", "ours_nchw", "plain"):
        torch.manual_seed(0)
        _peak_reset(device)
        train = _trainer(kind, layout, options, args, device)
        train(loaded[: args.warmup])
        _sync(device)
        started = time.perf_counter()
        train(loaded[args.warmup :])
        _sync(device)
        figures[f"{kind}_images_per_s"] = args.steps * args.batch_size / (time.perf_counter() - started)
        figures[f"{kind}_peak_gb"] = _peak_gb(device)
        del train
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return figures


def evaluation(layout: CocoLayout, options: ModelOptions, args: argparse.Namespace, device: torch.device) -> dict:
    val = CocoInstances(layout.images_dir("val"), layout.annotations("val"), train=False)
    loader = DataLoader(val, batch_size=args.eval_batch_size, collate_fn=collate, num_workers=args.loader_workers,
                        pin_memory=device.type == "cuda")
    model = build_model(layout.weights, replace(options, box_score_thresh=0.0)).to(device)
    workers = Workers(0, 1, 0, device)
    warm = next(iter(loader))[0]
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype(device),
                                                enabled=amp_dtype(device) is not None):
        outputs = model.eval()(images_on(device, warm))
    per_image = statistics.mean(len(o["boxes"]) for o in outputs)  # what the mask head ran on
    _peak_reset(device)
    _sync(device)
    started = time.perf_counter()
    found = detect(model, loader, val.label_to_category, workers, amp_dtype(device))
    _sync(device)
    inference = len(val) / (time.perf_counter() - started)
    coco = json.loads(layout.annotations("val").read_text())
    made_up = made_up_detections(coco, per_image=args.detections_per_image)
    scorer = Scorer(layout.annotations("val"), args.eval_processes)
    try:
        scorer.warm_up()
        scorer.submit(0, made_up[:8])  # the pool reads the annotations once, as in a run's first epoch
        scorer.finished(wait=True)
        started = time.perf_counter()
        scorer.submit(1, made_up)
        accuracy = scorer.finished(wait=True)[0][1]
        scoring = time.perf_counter() - started
    finally:
        scorer.close()
    kept = sum(len(d.boxes) for d in found) / len(val)
    return {"inference_images_per_s": inference, "detections_per_image": per_image, "kept_per_image": kept,
            "inference_peak_gb": _peak_gb(device), "scoring_seconds": scoring, "scored_images": len(made_up),
            "scoring_seconds_per_5000": scoring * COCO_VAL_IMAGES / len(made_up), "made_up_ap": accuracy}


def projection(train: dict, evaluate: dict) -> dict:
    epochs = rcp_epochs(GLOBAL_BATCH)
    epoch_s = COCO_TRAIN_IMAGES / (GPUS * train["ours_images_per_s"])
    blocking_eval_s = COCO_VAL_IMAGES / GPUS / evaluate["inference_images_per_s"]
    total_s = epochs * (epoch_s + blocking_eval_s) + evaluate["scoring_seconds_per_5000"]
    return {"rcp_epochs": epochs, "epoch_s": epoch_s, "blocking_eval_s": blocking_eval_s,
            "scoring_behind_training": evaluate["scoring_seconds_per_5000"] < epoch_s, "minutes": total_s / 60}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="toy sizes: checks the script on a CPU in a minute")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    device = torch.device(args.device)
    full = {"batch_size": 12, "warmup": 5, "steps": 20, "train_images": 192, "val_images": 1000,
            "eval_batch_size": 8, "loader_workers": 8, "eval_processes": 8, "detections_per_image": 100,
            "lr": 0.01, "geometry": COCO_SIZED, "options": ModelOptions()}
    tiny = {"batch_size": 2, "warmup": 1, "steps": 2, "train_images": 6, "val_images": 4, "eval_batch_size": 2,
            "loader_workers": 0, "eval_processes": 1, "detections_per_image": 10, "lr": 0.01, "geometry": SMALL,
            "options": ModelOptions(min_size=128, max_size=192, rpn_pre_nms_top_n_test=100,
                                    rpn_post_nms_top_n_test=100, box_detections_per_img=10,
                                    box_batch_size_per_image=64)}
    sizes = tiny if args.tiny else full
    for key, value in sizes.items():
        setattr(args, key, value)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    with tempfile.TemporaryDirectory(prefix="maskrcnn-gpu-check-") as tmp:
        layout = CocoLayout(Path(tmp))
        started = time.perf_counter()
        build_split(layout, "train", args.train_images, random.Random("gpu-train"), args.geometry)
        build_split(layout, "val", args.val_images, random.Random("gpu-val"), args.geometry)
        build_weights(layout.weights, 0, sorted(layout.images_dir("train").glob("*.jpg"))[:16])
        data_s = time.perf_counter() - started
        train = training(layout, args.options, args, device)
        evaluate = evaluation(layout, args.options, args, device)
    project = projection(train, evaluate)
    print(f"Mask R-CNN on {name} ({'toy sizes' if args.tiny else 'COCO resolution'}, "
          f"min/max {args.options.min_size}/{args.options.max_size}, data written in {data_s:.0f} s)")
    print(f"  training, batch {args.batch_size}, AMP: ours {train['ours_images_per_s']:.1f} images/s "
          f"(NCHW {train['ours_nchw_images_per_s']:.1f}), plain loop {train['plain_images_per_s']:.1f} images/s, "
          f"{train['ours_images_per_s'] / train['plain_images_per_s']:.2f}x; loader alone "
          f"{train['loader_images_per_s']:.0f} images/s")
    print(f"  peak GPU memory: ours {train['ours_peak_gb']:.1f} GB (NCHW {train['ours_nchw_peak_gb']:.1f}), "
          f"plain {train['plain_peak_gb']:.1f} GB, inference {evaluate['inference_peak_gb']:.1f} GB")
    print(f"  against ~{PUBLISHED_H100_IMAGES_PER_S:.0f} images/s per H100 in the published v3.1 logs: "
          f"{train['ours_images_per_s'] / PUBLISHED_H100_IMAGES_PER_S:.2f}x")
    print(f"  evaluation: inference {evaluate['inference_images_per_s']:.1f} images/s at batch {args.eval_batch_size} "
          f"({evaluate['detections_per_image']:.0f} detections per image, {evaluate['kept_per_image']:.0f} of the "
          f"sample's 4 categories); scoring "
          f"{evaluate['scoring_seconds_per_5000']:.1f} s per 5000 images in the background "
          f"({args.eval_processes} processes, {evaluate['scored_images']} images measured)")
    print(f"  projected on 8 such GPUs at global batch {GLOBAL_BATCH}: {project['rcp_epochs']:.2f} epochs (RCP mean) x "
          f"({project['epoch_s']:.0f} s training + {project['blocking_eval_s']:.1f} s inference) + last scoring = "
          f"{project['minutes']:.1f} minutes (lower bound: perfect scaling); scoring hides behind training: "
          f"{project['scoring_behind_training']}")
    if args.json:
        options = {k: v for k, v in vars(args).items() if k not in ("geometry", "options", "json")}
        args.json.write_text(json.dumps({"device": name, "settings": options, "training": train,
                                         "evaluation": evaluate, "projection_8_gpus": project}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
