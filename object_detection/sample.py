"""A tiny COCO-format dataset of coloured shapes, same layout and formats as the real one.

Each category has its own shape and colour, so a detector can learn it in minutes on a CPU. The
category ids and names are real COCO ones, so id mapping in the trainer is exercised for real.
Polygons are drawn with the same vertices that go into the annotations, so masks match pixels.
Every file written is recorded (common.datasets.inventory), so `verify --sample` finds one that was
cut short or altered later.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from common.atomic import atomic_path, write_text_atomic
from common.datasets import inventory
from object_detection.layout import SPLITS, CocoLayout, Split


@dataclass(frozen=True)
class ShapeClass:
    coco_id: int
    name: str
    supercategory: str
    sides: int  # polygon vertices; many sides draw a disc
    colour: tuple[int, int, int]


SHAPE_CLASSES: tuple[ShapeClass, ...] = (
    ShapeClass(37, "sports ball", "sports", 24, (220, 40, 40)),
    ShapeClass(38, "kite", "sports", 3, (40, 170, 60)),
    ShapeClass(73, "laptop", "electronic", 4, (40, 80, 220)),
    ShapeClass(13, "stop sign", "outdoor", 8, (230, 190, 30)),
)
DEFAULT_COUNTS: dict[Split, int] = {"train": 48, "val": 16}


@dataclass(frozen=True)
class Geometry:
    """Image sizes and how many objects of which radius an image holds."""

    sizes: tuple[tuple[int, int], ...]  # (width, height)
    objects: tuple[int, int]
    radius: tuple[float, float]


SMALL = Geometry(sizes=((160, 120), (192, 144), (144, 176)), objects=(1, 3), radius=(14, 30))
# COCO's usual sizes (most val2017 images are 640 wide), about its 7 objects per image, for measuring
# throughput at the real resolution (the model resizes them to 800 x 1333 as it does COCO's).
COCO_SIZED = Geometry(sizes=((640, 480), (480, 640), (640, 427), (427, 640)), objects=(2, 12), radius=(14, 120))
_FIRST_IMAGE_ID: dict[Split, int] = {"train": 1, "val": 100_001}


def _polygon(cls: ShapeClass, cx: float, cy: float, radius: float, angle: float) -> list[float]:
    flat: list[float] = []
    for k in range(cls.sides):
        a = angle + 2 * math.pi * k / cls.sides
        flat += [round(cx + radius * math.cos(a), 2), round(cy + radius * math.sin(a), 2)]
    return flat


def _area(flat: list[float]) -> float:
    xs, ys = flat[0::2], flat[1::2]
    n = len(xs)
    return abs(sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))) / 2


def _bbox(flat: list[float]) -> list[float]:
    xs, ys = flat[0::2], flat[1::2]
    return [round(min(xs), 2), round(min(ys), 2), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)]


def _place(rng: random.Random, width: int, height: int, taken: list[tuple[float, float, float]],
           radius: tuple[float, float]) -> tuple[float, float, float] | None:
    """A circle (cx, cy, r) inside the image that overlaps no earlier one, or None."""
    for _ in range(50):
        r = rng.uniform(*radius)
        cx, cy = rng.uniform(r + 2, width - r - 2), rng.uniform(r + 2, height - r - 2)
        if all(math.hypot(cx - x, cy - y) > r + tr + 4 for x, y, tr in taken):
            return cx, cy, r
    return None


def _write_json(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload))


def build_split(layout: CocoLayout, split: Split, count: int, rng: random.Random, geometry: Geometry = SMALL) -> None:
    images_dir = layout.images_dir(split)
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    ann_id = _FIRST_IMAGE_ID[split] * 10
    for n in range(count):
        image_id = _FIRST_IMAGE_ID[split] + n
        width, height = rng.choice(geometry.sizes)
        background = tuple(rng.randint(200, 245) for _ in range(3))
        image = Image.new("RGB", (width, height), background)
        draw = ImageDraw.Draw(image)
        taken: list[tuple[float, float, float]] = []
        for _ in range(rng.randint(*geometry.objects)):
            spot = _place(rng, width, height, taken, geometry.radius)
            if spot is None:
                break
            taken.append(spot)
            cls = rng.choice(SHAPE_CLASSES)
            flat = _polygon(cls, *spot, angle=rng.uniform(0, 2 * math.pi))
            draw.polygon(list(zip(flat[0::2], flat[1::2], strict=True)), fill=cls.colour)
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": cls.coco_id,
                "segmentation": [flat], "area": round(_area(flat), 2), "bbox": _bbox(flat), "iscrowd": 0,
            })
            ann_id += 1
        file_name = f"{image_id:012d}.jpg"
        image.save(images_dir / file_name, format="JPEG", quality=95)
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
    categories = [
        {"id": c.coco_id, "name": c.name, "supercategory": c.supercategory}
        for c in sorted(SHAPE_CLASSES, key=lambda c: c.coco_id)
    ]
    info = {"description": f"MLPerf @ Backend.AI sample ({split})", "version": "1.0", "year": 2017}
    path = layout.annotations(split)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, {"info": info, "licenses": [], "images": images,
                       "annotations": annotations, "categories": categories})


def build_weights(path: Path, seed: int, calibration_images: list[Path] | None = None) -> None:
    """A state_dict with torchvision's ResNet-50 keys and shapes, randomly initialised.

    Training freezes every BatchNorm, as the reference does; with random weights and identity
    statistics the activations grow through the 16 blocks and the loss diverges. So the BatchNorm
    statistics are measured on `calibration_images` (the sample's own pictures), and the frozen
    network then behaves like a pre-trained one. The only place in data preparation that needs
    torch, imported here so the control plane stays light.
    """
    import torch  # noqa: PLC0415 - torch only for the sample weights
    from torchvision.models import resnet50  # noqa: PLC0415
    from torchvision.transforms import functional  # noqa: PLC0415

    torch.manual_seed(seed)
    model = resnet50(weights=None)
    if calibration_images:
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None  # a plain average over the calibration batch
        batch = []
        for image_path in calibration_images:
            with Image.open(image_path) as picture:
                image = functional.pil_to_tensor(picture.convert("RGB")).float() / 255
            image = functional.resize(image, [128, 160], antialias=True)
            batch.append(functional.normalize(image, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
        model.train()
        with torch.no_grad():
            model(torch.stack(batch))
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)


def build_sample(data_dir: Path, seed: int = 0, counts: dict[Split, int] | None = None, jobs: int = 4,
                 geometry: Geometry = SMALL) -> CocoLayout:
    """Write the sample dataset (images, annotations, weights) under `data_dir` and record its files.
    The default geometry is the sample's; `COCO_SIZED` gives images of COCO's sizes, for measuring."""
    layout = CocoLayout(Path(data_dir))
    counts = {**DEFAULT_COUNTS, **(counts or {})}
    for split in SPLITS:
        build_split(layout, split, counts[split], random.Random(f"{seed}-{split}"), geometry)
    build_weights(layout.weights, seed, sorted(layout.images_dir("train").glob("*.jpg"))[:16])
    files = [*inventory.files_under([layout.images_dir(s) for s in SPLITS]),
             *(layout.annotations(s) for s in SPLITS), layout.weights]
    described = {"generator": __name__, "seed": seed, "counts": counts}
    if geometry != SMALL:
        described["geometry"] = {"sizes": geometry.sizes, "objects": geometry.objects, "radius": geometry.radius}
    inventory.record(layout.data_dir, "sample", described, files, jobs)
    return layout
