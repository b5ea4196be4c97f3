"""Detections made up from a COCO ground truth: what the scoring takes, without a trained model.

The scoring's tests compare faster-coco-eval with pycocotools on them, and perf/ times the scoring on
them at COCO's sizes; both need detections that match some objects well, some badly and some not at all.
"""

from __future__ import annotations

import numpy as np

from object_detection.maskrcnn.detections import ImageDetections

MISSED = 0.15  # the share of objects with no detection
WRONG_CATEGORY = 0.1  # the share of found objects given another category


def made_up_detections(coco: dict, *, per_image: int = 0, seed: int = 1) -> list[ImageDetections]:
    """Per image: most objects found (a jittered box, a soft blob of a mask, a few with the wrong
    category), some missed, and 0-3 false positives, more where needed to make `per_image` in all."""
    rng = np.random.default_rng(seed)
    by_image: dict[int, list[dict]] = {}
    for annotation in coco["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    category_ids = [c["id"] for c in coco["categories"]]
    grid = np.linalg.norm(np.stack(np.meshgrid(np.linspace(-1, 1, 28), np.linspace(-1, 1, 28)), -1), axis=-1)
    found = []
    for info in coco["images"]:
        width, height = info["width"], info["height"]
        boxes, scores, categories = [], [], []
        for annotation in by_image.get(info["id"], []):
            if rng.random() < MISSED:
                continue
            x, y, w, h = annotation["bbox"]
            jitter = rng.normal(0, 0.04, 4) * [w, h, w, h]
            boxes.append([x + jitter[0], y + jitter[1], x + w + jitter[2], y + h + jitter[3]])
            scores.append(rng.uniform(0.3, 1.0))
            wrong = rng.random() < WRONG_CATEGORY
            categories.append(int(rng.choice(category_ids)) if wrong else annotation["category_id"])
        false_positives = max(int(rng.integers(0, 4)), per_image - len(boxes))
        for _ in range(false_positives):
            x, y = rng.uniform(0, width - 20), rng.uniform(0, height - 20)
            boxes.append([x, y, x + rng.uniform(10, 120), y + rng.uniform(10, 120)])
            scores.append(rng.uniform(0.05, 0.6))
            categories.append(int(rng.choice(category_ids)))
        radius = rng.uniform(0.5, 1.1, (len(boxes), 1, 1))
        masks = 1 / (1 + np.exp(8 * (grid[None] - radius)))
        box_array = np.clip(np.array(boxes, dtype=np.float32).reshape(-1, 4), 0, [width, height, width, height])
        found.append(ImageDetections(info["id"], height, width, box_array, np.array(scores, dtype=np.float32),
                                     np.array(categories, dtype=np.int64), masks.astype(np.float16)))
    return found
