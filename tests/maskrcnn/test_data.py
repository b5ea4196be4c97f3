"""Which COCO images train, as maskrcnn-benchmark's `has_valid_annotation` decides, and what their targets hold.

The reference counts every annotation, crowd regions included, when it decides whether an image trains
(`COCODataset(remove_images_without_annotations=True)`), then drops crowd regions from the targets: an image
with only crowd regions trains as an image without objects.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

WIDTH, HEIGHT = 40, 30
# image id -> its annotations as (bbox, iscrowd)
IMAGES: dict[int, list[tuple[list[float], int]]] = {
    1: [([2, 2, 20, 10], 0)],  # an object
    2: [([0, 0, 30, 20], 1)],  # only a crowd region: kept, no objects
    3: [([5, 5, 1, 8], 0)],  # only a box 1 px wide: dropped
    4: [],  # nothing: dropped
    5: [([1, 1, 1, 1], 1)],  # only a crowd region of 1 x 1 px: dropped
    6: [([0, 0, 30, 20], 1), ([3, 3, 0.5, 0.5], 0)],  # a crowd region and a speck: kept, the speck has an area
    7: [([45, 2, 10, 10], 0), ([2, 2, 8, 8], 1)],  # an object outside the image and a crowd region: kept, empty
}


def _square(box: list[float]) -> list[list[float]]:
    x, y, w, h = box
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


@pytest.fixture
def dataset_files(tmp_path: Path) -> tuple[Path, Path]:
    from PIL import Image  # noqa: PLC0415

    images_dir = tmp_path / "images"
    images_dir.mkdir()
    coco: dict = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "thing"}]}
    for image_id, regions in IMAGES.items():
        name = f"{image_id:012d}.jpg"
        Image.new("RGB", (WIDTH, HEIGHT), (90, 120, 150)).save(images_dir / name)
        coco["images"].append({"id": image_id, "file_name": name, "width": WIDTH, "height": HEIGHT})
        for box, crowd in regions:
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id, "category_id": 7,
                                        "bbox": box, "area": box[2] * box[3], "iscrowd": crowd,
                                        "segmentation": _square(box)})
    annotations_file = tmp_path / "instances_train2017.json"
    annotations_file.write_text(json.dumps(coco))
    return images_dir, annotations_file


def test_training_keeps_the_images_with_a_valid_annotation_crowd_regions_included(
        dataset_files: tuple[Path, Path]) -> None:
    from object_detection.maskrcnn.data import CocoInstances  # noqa: PLC0415

    train = CocoInstances(*dataset_files, train=True)
    kept = [int(train.coco.image_ids[i]) for i in train.images]
    assert kept == [1, 2, 6, 7]
    assert len(CocoInstances(*dataset_files, train=False)) == len(IMAGES)  # evaluation reads every image


def test_crowd_regions_and_boxes_outside_the_image_are_not_targets(dataset_files: tuple[Path, Path]) -> None:
    from object_detection.maskrcnn.data import CocoInstances  # noqa: PLC0415

    train = CocoInstances(*dataset_files, train=True)
    train.flip = None
    targets = {int(target["image_id"]): target for _, target in (train[i] for i in range(len(train)))}
    assert targets[1]["boxes"].tolist() == [[2.0, 2.0, 22.0, 12.0]]
    for image_id in (2, 7):
        assert targets[image_id]["boxes"].shape == (0, 4)
        assert targets[image_id]["labels"].shape == (0,)
        assert targets[image_id]["masks"].shape == (0, HEIGHT, WIDTH)
    assert targets[6]["boxes"].tolist() == [[3.0, 3.0, 3.5, 3.5]]
