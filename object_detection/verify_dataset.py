"""Check the Mask R-CNN data: checksums of every file with a known digest, the size of every file
prepare extracted or generated (its digest too with --full), then the layout.

    python -m object_detection.verify_dataset --data-dir /data [--full]
    python -m object_detection.verify_dataset --data-dir /tmp/sample --sample [--full]

Exits 1 naming each missing or bad file, with expected and actual digests, sizes or counts.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from common.datasets.steps import add_verify_args, run_cli, verify
from object_detection.layout import SPLITS, CocoLayout

MANIFEST = Path(__file__).with_name("dataset_manifest.yaml")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m object_detection.verify_dataset", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verify_args(p, MANIFEST)
    return p


def layout_problems(layout: CocoLayout, expected_images: dict[str, int] | None) -> tuple[list[str], int]:
    """Missing folders or files, unreadable annotations, and image counts that differ.

    Expected counts come from the manifest for the real dataset, and from the annotations
    themselves for the sample.
    """
    problems: list[str] = []
    checks = 0
    for split in SPLITS:
        images_dir, annotations = layout.images_dir(split), layout.annotations(split)
        checks += 2
        if not annotations.is_file():
            problems.append(f"{annotations}: missing")
            continue
        try:
            listed = json.loads(annotations.read_text(encoding="utf-8"))["images"]
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{annotations}: not a COCO annotation file ({exc})")
            continue
        if not images_dir.is_dir():
            problems.append(f"{images_dir}: missing")
            continue
        found = {p.name for p in images_dir.glob("*.jpg")}
        want = expected_images[split] if expected_images else len(listed)
        if len(found) != want:
            problems.append(f"{images_dir}: expected {want} images, found {len(found)}")
        missing = [i["file_name"] for i in listed if i["file_name"] not in found]
        if missing:
            problems.append(f"{annotations}: {len(missing)} listed image(s) missing in {images_dir}, "
                            f"e.g. {missing[0]}")
    checks += 1
    if not layout.weights.is_file():
        problems.append(f"{layout.weights}: missing")
    return problems, checks


def run(args: argparse.Namespace) -> int:
    layout = CocoLayout(args.data_dir)
    return verify(args, "Mask R-CNN", args.data_dir, lambda expected: layout_problems(layout, expected), "images")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
