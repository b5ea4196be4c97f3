"""Mask R-CNN training throughput at COCO resolution: this project's trainer against a plain torchvision loop.

    python perf/maskrcnn_throughput.py [--data-dir D] [--batch-size 1] [--iters 3] [--rounds 1]

Both train on the same pre-read batches (so image decoding is not measured; perf/maskrcnn_loader.py
measures the loader), with the same batch, image size (800/1333 by default) and threads. Without
--data-dir the COCO-sized sample (object_detection.sample.COCO_SIZED: 640 x 480 and the like, resized
by the model to 800 x 1333 as COCO is) is written to a temporary folder. The peers:
- "plain": torchvision's MaskRCNN with the reference's settings (ResNet-50-FPN with frozen BatchNorm and
  frozen stem + res2, 81 classes, 1000 training proposals per image, 512 RoIs per image, the same weights
  file) in a bare loop: forward, backward, torch's default SGD, and the loss read every iteration, as a
  loop that logs it does;
- "ours": object_detection.maskrcnn (model.build_model: frozen BatchNorm folded into the convolutions;
  fused SGD; engine.train_one_epoch, which reads the loss every 50 iterations);
- "ours+cl": the same in channels-last layout (the trainer's default on a GPU, off on a CPU).
Each measurement runs in its own process, so each peak RSS is its own; rounds alternate the peers.
Prints images/s, the ratios to "plain", peak memory, and the share of each peer's time spent in
convolutions (forward and backward, from torch.profiler over one more iteration after the timed ones):
what no change to the loop around them can speed up.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

KINDS = ("plain", "ours", "ours+cl")


def _batches(data_dir: Path, batch_size: int, count: int, start: int) -> list:
    from object_detection.layout import CocoLayout  # noqa: PLC0415 - torch only in the measuring child
    from object_detection.maskrcnn.data import CocoInstances, collate  # noqa: PLC0415

    layout = CocoLayout(data_dir)
    dataset = CocoInstances(layout.images_dir("train"), layout.annotations("train"), train=True)
    return [collate([dataset[(start + k * batch_size + j) % len(dataset)] for j in range(batch_size)])
            for k in range(count)]


def _plain_model(weights: Path, args: argparse.Namespace):
    import torch  # noqa: PLC0415
    from torchvision.models import resnet50  # noqa: PLC0415
    from torchvision.models.detection import MaskRCNN  # noqa: PLC0415
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor  # noqa: PLC0415
    from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: PLC0415

    resnet = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    resnet.load_state_dict({k: v for k, v in state.items() if "num_batches_tracked" not in k}, strict=False)
    return MaskRCNN(_resnet_fpn_extractor(resnet, 3), num_classes=81, min_size=args.min_size, max_size=args.max_size,
                    rpn_post_nms_top_n_train=1000, box_batch_size_per_image=512)


def measure(kind: str, args: argparse.Namespace) -> dict:
    import torch  # noqa: PLC0415

    from object_detection.layout import CocoLayout  # noqa: PLC0415
    from object_detection.maskrcnn import solver  # noqa: PLC0415
    from object_detection.maskrcnn.config import ModelOptions  # noqa: PLC0415
    from object_detection.maskrcnn.distributed import Workers  # noqa: PLC0415
    from object_detection.maskrcnn.engine import train_one_epoch  # noqa: PLC0415
    from object_detection.maskrcnn.model import build_model  # noqa: PLC0415
    from object_detection.maskrcnn.schedule import Schedule  # noqa: PLC0415

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    warm = _batches(args.data_dir, args.batch_size, args.warmup, start=0)
    timed = _batches(args.data_dir, args.batch_size, args.iters, start=args.warmup * args.batch_size)
    weights = CocoLayout(args.data_dir).weights
    if kind.startswith("ours"):
        model = build_model(weights, ModelOptions(min_size=args.min_size, max_size=args.max_size,
                                                  channels_last=kind == "ours+cl"))
        optimizer = solver.build_optimizer(model, args.lr)
        scheduler = solver.build_scheduler(optimizer, Schedule(args.lr, 0, 1.0, "linear", (10**6, 10**6 + 1)))
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        workers = Workers(0, 1, 0, torch.device("cpu"))

        def train(batches: list) -> None:
            train_one_epoch(model, optimizer, scheduler, batches, workers=workers, scaler=scaler,
                            iteration=0, max_iterations=len(batches), epoch=1)
    else:
        model = _plain_model(weights, args)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)

        def train(batches: list) -> None:
            model.train()
            for images, targets in batches:
                losses = model([i.float() / 255.0 for i in images], targets)
                loss = sum(losses.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                print(f"loss {loss.item():.3f}", file=sys.stderr)

    train(warm)
    started = time.perf_counter()
    train(timed)
    seconds = time.perf_counter() - started
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "images_per_s": args.iters * args.batch_size / seconds, "peak_rss_mb": peak_rss_mb,
            "convolution_share": _convolution_share(lambda: train(warm))}


def _convolution_share(step) -> float:
    """The fraction of the CPU time of `step` that the convolution kernels take, forward and backward."""
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    with profile(activities=[ProfilerActivity.CPU]) as recorded:
        step()
    events = recorded.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    convolutions = sum(e.self_cpu_time_total for e in events if "convolution" in e.key)
    return convolutions / total if total else 0.0


def _coco_sized(data_dir: Path) -> None:
    from object_detection.layout import CocoLayout  # noqa: PLC0415
    from object_detection.sample import COCO_SIZED, build_split, build_weights  # noqa: PLC0415

    layout = CocoLayout(data_dir)
    build_split(layout, "train", 16, random.Random("perf-train"), COCO_SIZED)
    build_weights(layout.weights, 0, sorted(layout.images_dir("train").glob("*.jpg")))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=None, help="default: the COCO-sized sample, in a temporary folder")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--min-size", type=int, default=800)
    p.add_argument("--max-size", type=int, default=1333)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--lr", type=float, default=1e-4, help="small: throughput, not learning, is measured")
    p.add_argument("--only", choices=KINDS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args)))
        return 0
    with tempfile.TemporaryDirectory(prefix="maskrcnn-train-perf-") as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp)
            _coco_sized(data_dir)
        figures: dict[str, list[dict]] = {k: [] for k in args.kinds}
        for _ in range(args.rounds):
            for kind in args.kinds:
                command = [sys.executable, __file__, *sys.argv[1:], "--data-dir", str(data_dir), "--only", kind]
                out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                figures[kind].append(json.loads(out.strip().splitlines()[-1]))
    best = {k: max(r["images_per_s"] for r in v) for k, v in figures.items()}
    peak = {k: max(r["peak_rss_mb"] for r in v) for k, v in figures.items()}
    share = {k: max(r["convolution_share"] for r in v) for k, v in figures.items()}
    print(f"Mask R-CNN training, CPU, {args.threads} threads, batch {args.batch_size}, "
          f"min/max size {args.min_size}/{args.max_size}, {args.iters} timed iterations, best of {args.rounds}")
    for kind in args.kinds:
        runs = ", ".join(f"{r['images_per_s']:.4f}" for r in figures[kind])
        ratio = f", {best[kind] / best['plain']:.2f}x plain" if "plain" in best and kind != "plain" else ""
        print(f"  {kind:8s}: {best[kind]:.4f} images/s (rounds: {runs}){ratio}, peak RSS {peak[kind]:.0f} MB, "
              f"{share[kind]:.0%} of a step in convolutions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
