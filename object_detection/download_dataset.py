"""Download, extract and check COCO 2017 and the ResNet-50 weights, or build the sample.

    python -m object_detection.download_dataset --data-dir /data [--mirror URL | --from DIR]
    python -m object_detection.download_dataset --data-dir /tmp/sample --sample
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
    return p


def run(args: argparse.Namespace) -> int:
    if args.sample:
        extras.require("train", "the Mask R-CNN sample", ("numpy", "PIL", "torch", "torchvision"))
        from object_detection.sample import build_sample  # noqa: PLC0415 - pulls in torch for the weights

        layout = build_sample(args.data_dir, seed=args.seed, jobs=args.jobs)
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
