"""The sample generator at COCO's sizes, for measuring at the real resolution: images of COCO's sizes with
about its number of objects, and annotations that match the pixels."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from object_detection.layout import CocoLayout
from object_detection.sample import COCO_SIZED, build_split


def test_coco_sized_images_have_coco_sizes_objects_and_masks_that_match_the_pixels(tmp_path: Path) -> None:
    pycocotools = pytest.importorskip("pycocotools.mask")
    layout = CocoLayout(tmp_path)
    build_split(layout, "val", 12, random.Random("0-val"), COCO_SIZED)
    coco = json.loads(layout.annotations("val").read_text())
    per_image = {i["id"]: [a for a in coco["annotations"] if a["image_id"] == i["id"]] for i in coco["images"]}
    assert {(i["width"], i["height"]) for i in coco["images"]} <= set(COCO_SIZED.sizes)
    assert 4 <= np.mean([len(v) for v in per_image.values()]) <= 12
    assert max(a["bbox"][2] for a in coco["annotations"]) > 100  # objects of COCO's sizes, not only small ones
    for info in coco["images"]:
        with Image.open(layout.images_dir("val") / info["file_name"]) as picture:
            pixels = np.asarray(picture.convert("RGB")).astype(int)
        assert pixels.shape == (info["height"], info["width"], 3)
        background = pixels[0, 0]
        for annotation in per_image[info["id"]]:
            rles = pycocotools.frPyObjects(annotation["segmentation"], info["height"], info["width"])
            inside = pycocotools.decode(pycocotools.merge(rles)).astype(bool)
            x, y, w, h = annotation["bbox"]
            assert min(x, y) >= 0 and x + w <= info["width"] and y + h <= info["height"]
            # Most of a shape's pixels are far from the background colour (JPEG blurs the edges).
            assert (np.abs(pixels[inside] - background).sum(axis=1) > 60).mean() > 0.9

