"""Mask R-CNN data pipeline alone: images/s and memory of the loader with 4 workers, against the one it replaced.

    python perf/maskrcnn_loader.py [--images 160] [--copies 150] [--workers 4] [--batches 40]

The data is the COCO-sized sample's train split (object_detection.sample.COCO_SIZED, 640 x 480 and the
like) in a temporary folder; its annotation file lists those images `--copies` times (new ids, the same
files), so that it is about as long as a sixth of COCO's train2017 (`--copies 150`: 24k images, 170k
annotations) and the annotations' memory shows. Two peers, each in its own process, over the same
batches of 2 (training targets: boxes, labels, full-size masks, flips):
- "before": the dataset as it was: a pycocotools COCO object, PIL decoding;
- "ours": object_detection.maskrcnn.data.CocoInstances: annotations in shared numpy arrays,
  torchvision.io decoding.
Prints images/s (after one warm-up batch per worker) and the memory of the main process and its workers
while they run: PSS (pages shared between them counted once in total) and the sum of their RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def _before_dataset(images_dir: Path, annotations: Path):
    """The training dataset before this change, for comparison: pycocotools and PIL."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415
    from pycocotools.coco import COCO  # noqa: PLC0415
    from torchvision.transforms.functional import pil_to_tensor  # noqa: PLC0415

    from object_detection.maskrcnn.data import boxes_in_image, decode_mask  # noqa: PLC0415
    from object_detection.maskrcnn.transforms import RandomHorizontalFlip  # noqa: PLC0415

    class Before(torch.utils.data.Dataset):
        def __init__(self) -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                self.coco = COCO(str(annotations))
            self.labels = {cid: i + 1 for i, cid in enumerate(sorted(self.coco.getCatIds()))}
            self.ids = [i for i in sorted(self.coco.imgs) if any(
                not a.get("iscrowd", 0) and all(s > 1 for s in a["bbox"][2:]) for a in self.coco.imgToAnns.get(i, []))]
            self.flip = RandomHorizontalFlip(0.5)

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, index: int):
            info = self.coco.imgs[self.ids[index]]
            with Image.open(images_dir / info["file_name"]) as picture:
                image = pil_to_tensor(picture.convert("RGB"))
            height, width = image.shape[1:]
            anns = [a for a in self.coco.imgToAnns.get(info["id"], []) if not a.get("iscrowd", 0)]
            boxes, keep = boxes_in_image(torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4),
                                         height, width)
            masks = np.zeros((len(anns), height, width), dtype=np.uint8)
            for k, a in enumerate(anns):
                masks[k] = decode_mask(a["segmentation"], height, width)
            labels = torch.tensor([self.labels[a["category_id"]] for a in anns], dtype=torch.int64)
            target = {"boxes": boxes[keep], "labels": labels[keep], "masks": torch.from_numpy(masks)[keep],
                      "image_id": torch.tensor(info["id"])}
            return self.flip(image, target)

    return Before()


def measure(kind: str, data: Path, args: argparse.Namespace) -> dict:
    import psutil  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from torch.utils.data import DataLoader  # noqa: PLC0415

    from object_detection.maskrcnn.data import CocoInstances, collate  # noqa: PLC0415

    images_dir, annotations = data / "images", data / "instances_train2017.json"
    started = time.perf_counter()
    dataset = (_before_dataset(images_dir, annotations) if kind == "before"
               else CocoInstances(images_dir, annotations, train=True))
    load_seconds = time.perf_counter() - started
    order = list(range(len(dataset)))
    random.Random(0).shuffle(order)
    batches = [order[2 * k : 2 * k + 2] for k in range(args.batches + args.workers)]
    torch.manual_seed(0)
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate, num_workers=args.workers,
                        persistent_workers=True, prefetch_factor=2)
    iterator = iter(loader)
    for _ in range(args.workers):  # one warm-up batch per worker: the workers are up
        next(iterator)
    started = time.perf_counter()
    images = 0
    for batch_images, _ in iterator:
        images += len(batch_images)
    seconds = time.perf_counter() - started
    me = psutil.Process()
    processes = [me, *me.children(recursive=True)]
    infos = [p.memory_full_info() for p in processes]
    return {"kind": kind, "images_per_s": images / seconds, "load_s": load_seconds, "processes": len(processes),
            "pss_mb": sum(i.pss for i in infos) / 2**20, "rss_mb": sum(i.rss for i in infos) / 2**20}


def build(data: Path, args: argparse.Namespace) -> dict:
    from object_detection.layout import CocoLayout  # noqa: PLC0415
    from object_detection.sample import COCO_SIZED, build_split  # noqa: PLC0415

    layout = CocoLayout(data / "build")
    build_split(layout, "train", args.images, random.Random("perf-train"), COCO_SIZED)
    layout.images_dir("train").rename(data / "images")
    coco = json.loads(layout.annotations("train").read_text())
    images, annotations = [], []
    for copy in range(args.copies):
        offset = copy * 1_000_000
        images += [{**i, "id": i["id"] + offset} for i in coco["images"]]
        annotations += [{**a, "id": a["id"] + offset * 100, "image_id": a["image_id"] + offset}
                        for a in coco["annotations"]]
    coco.update(images=images, annotations=annotations)
    (data / "instances_train2017.json").write_text(json.dumps(coco))
    return {"images": len(images), "annotations": len(annotations),
            "mb": (data / "instances_train2017.json").stat().st_size / 2**20}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=160, help="distinct COCO-sized images written")
    p.add_argument("--copies", type=int, default=150, help="times the annotation file lists them")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--batches", type=int, default=40, help="timed batches of 2")
    p.add_argument("--only", choices=("before", "ours"), help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.data, args)))
        return 0
    with tempfile.TemporaryDirectory(prefix="maskrcnn-loader-perf-") as tmp:
        size = build(Path(tmp), args)
        figures = {}
        for kind in ("before", "ours"):
            out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--only", kind, "--data", tmp],
                                 capture_output=True, text=True, check=True).stdout
            figures[kind] = json.loads(out.strip().splitlines()[-1])
    print(f"Mask R-CNN loader, CPU, {args.workers} workers, batches of 2, {args.batches} timed batches; "
          f"annotation file of {size['images']} images, {size['annotations']} annotations ({size['mb']:.0f} MB)")
    for kind in ("before", "ours"):
        f = figures[kind]
        print(f"  {kind:6s}: {f['images_per_s']:6.1f} images/s, annotations read in {f['load_s']:5.1f} s, "
              f"memory of {f['processes']} processes: PSS {f['pss_mb']:6.0f} MB, RSS summed {f['rss_mb']:6.0f} MB")
    before, ours = figures["before"], figures["ours"]
    print(f"  ratio ours/before: {ours['images_per_s'] / before['images_per_s']:.2f}x images/s, "
          f"{before['pss_mb'] / ours['pss_mb']:.2f}x less PSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
