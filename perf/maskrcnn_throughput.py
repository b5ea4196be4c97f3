"""Mask R-CNN training throughput: this project's trainer against a plain torchvision loop.

    python perf/maskrcnn_throughput.py --data-dir /tmp/sample [--min-size 320] [--iters 6] [--rounds 2]

Both train on the same pre-read batches of the dataset (so image decoding is not measured), with the
same batch, image size and threads. "ours" is object_detection.maskrcnn (model.build_model,
solver, engine.train_one_epoch); "plain" is torchvision's maskrcnn_resnet50_fpn with its defaults
(trainable BatchNorm, 91 classes, 2000 training proposals per image) in a bare
forward/backward/SGD loop. Each measurement runs in its own process, so each peak RSS is its own;
rounds alternate the two to spread the machine's noise. Prints images/s, the ratios ours/plain and
peak memory. Build a dataset with `invoke maskrcnn.prepare --sample --data-dir /tmp/sample`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def _batches(data_dir: Path, batch_size: int, count: int) -> list:
    from object_detection.layout import CocoLayout  # noqa: PLC0415 - torch only in the measuring child
    from object_detection.maskrcnn.data import CocoInstances, collate  # noqa: PLC0415

    layout = CocoLayout(data_dir)
    dataset = CocoInstances(layout.images_dir("train"), layout.annotations("train"), train=True)
    return [collate([dataset[(k * batch_size + j) % len(dataset)] for j in range(batch_size)]) for k in range(count)]


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
    warm = _batches(args.data_dir, args.batch_size, args.warmup)
    timed = _batches(args.data_dir, args.batch_size, args.iters)
    if kind == "ours":
        model = build_model(CocoLayout(args.data_dir).weights, ModelOptions(min_size=args.min_size,
                                                                            max_size=args.max_size))
        optimizer = solver.build_optimizer(model, args.lr)
        scheduler = solver.build_scheduler(optimizer, Schedule(args.lr, 0, 1.0, "linear", (10**6, 10**6 + 1)))
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        workers = Workers(0, 1, 0, torch.device("cpu"))

        def train(batches: list) -> None:
            train_one_epoch(model, optimizer, scheduler, batches, workers=workers, scaler=scaler,
                            iteration=0, max_iterations=len(batches), epoch=1)
    else:
        from torchvision.models.detection import maskrcnn_resnet50_fpn  # noqa: PLC0415

        model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=args.min_size,
                                      max_size=args.max_size)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)

        def train(batches: list) -> None:
            model.train()
            for images, targets in batches:
                losses = model([i.float() / 255.0 for i in images], targets)
                loss = sum(losses.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

    train(warm)
    started = time.perf_counter()
    train(timed)
    seconds = time.perf_counter() - started
    return {"kind": kind, "images_per_s": args.iters * args.batch_size / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--min-size", type=int, default=320)
    p.add_argument("--max-size", type=int, default=512)
    p.add_argument("--iters", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-4, help="small: throughput, not learning, is measured")
    p.add_argument("--only", choices=("ours", "plain"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args)))
        return 0
    figures: dict[str, list[dict]] = {"ours": [], "plain": []}
    for _ in range(args.rounds):
        for kind in ("ours", "plain"):
            out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--only", kind],
                                 capture_output=True, text=True, check=True).stdout
            figures[kind].append(json.loads(out.strip().splitlines()[-1]))
    best = {k: max(r["images_per_s"] for r in v) for k, v in figures.items()}
    peak = {k: max(r["peak_rss_mb"] for r in v) for k, v in figures.items()}
    print(f"Mask R-CNN training, CPU, {args.threads} threads, batch {args.batch_size}, "
          f"min/max size {args.min_size}/{args.max_size}, {args.iters} timed iterations, best of {args.rounds}")
    for kind in ("ours", "plain"):
        runs = ", ".join(f"{r['images_per_s']:.3f}" for r in figures[kind])
        print(f"  {kind:5s}: {best[kind]:.3f} images/s (rounds: {runs}), peak RSS {peak[kind]:.0f} MB")
    pairs = zip(figures["ours"], figures["plain"], strict=True)
    paired = sorted(o["images_per_s"] / q["images_per_s"] for o, q in pairs)
    print(f"  ratio ours/plain: {best['ours'] / best['plain']:.2f}x best-to-best, "
          f"{paired[len(paired) // 2]:.2f}x median of rounds (each round: ours then plain, same load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
