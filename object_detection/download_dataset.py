"""Download, extract and check COCO 2017 and the ResNet-50 weights, or build the sample.

    python -m object_detection.download_dataset --data-dir /data [--mirror URL | --from DIR]
    python -m object_detection.download_dataset --data-dir /tmp/sample --sample
    python -m object_detection.download_dataset --data-dir /tmp/coco-sized --sample --coco-sized [--images 256 64]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from common import extras
from common.datasets.manifest import load_manifest
from common.datasets.steps import add_download_args, download, extract_downloads, run_cli

MANIFEST = Path(__file__).with_name("dataset_manifest.yaml")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m object_detection.download_dataset", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_download_args(p, MANIFEST)
    p.add_argument("--coco-sized", action="store_true",
                   help="with --sample: images of COCO's sizes (640 x 480 ...) and object counts, for measuring")
    p.add_argument("--images", type=int, nargs=2, metavar=("TRAIN", "VAL"), default=None,
                   help="with --sample: how many images each split gets (default 48 16)")
    return p


def run(args: argparse.Namespace) -> int:
    if args.sample:
        extras.require("train", "the Mask R-CNN sample", ("numpy", "PIL", "torch", "torchvision"))
        from object_detection import sample  # noqa: PLC0415 - pulls in torch for the weights

        counts = {"train": args.images[0], "val": args.images[1]} if args.images else None
        layout = sample.build_sample(args.data_dir, seed=args.seed, jobs=args.jobs, counts=counts,
                                     geometry=sample.COCO_SIZED if args.coco_sized else sample.SMALL)
        print(f"sample COCO dataset written to {layout.coco_dir}, weights to {layout.weights}")
        return 0
    manifest = load_manifest(args.manifest)
    download(manifest, args.data_dir, args)
    extract_downloads(manifest, args.data_dir, args.jobs)
    print(f"COCO 2017 and the ResNet-50 weights are in {args.data_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
