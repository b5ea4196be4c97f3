"""COCO evaluation (bbox and segm AP@[.5:.95]) with pycocotools, as the MLPerf reference scores.

Every worker runs inference on its share of the images; rank 0 gathers the detections, runs
COCOeval and shares the two numbers, so all workers take the same stop decision. A model that
makes no detection scores 0 (pycocotools refuses an empty result list). Inference runs under
autocast when `autocast_dtype` is given; the boxes are decoded in fp32 all the same (model.py).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch.utils.data import DataLoader
from tqdm import tqdm

from object_detection.maskrcnn import distributed
from object_detection.maskrcnn.data import CocoInstances
from object_detection.maskrcnn.distributed import Workers
from object_detection.maskrcnn.engine import images_on

BBOX_TARGET = 0.377
SEGM_TARGET = 0.339
MASK_THRESHOLD = 0.5

Detections = dict[str, list[dict[str, Any]]]


def reached_target(accuracy: dict[str, float]) -> bool:
    return accuracy["BBOX"] >= BBOX_TARGET and accuracy["SEGM"] >= SEGM_TARGET


def to_coco_results(output: dict[str, torch.Tensor], image_id: int, label_to_category: dict[int, int]) -> Detections:
    boxes = output["boxes"].float().cpu()
    boxes[:, 2:] -= boxes[:, :2]
    scores = output["scores"].float().cpu().tolist()
    categories = [label_to_category.get(int(label), 0) for label in output["labels"].cpu()]
    masks = (output["masks"][:, 0] > MASK_THRESHOLD).cpu().numpy().astype(np.uint8)
    bbox, segm = [], []
    for k, (score, category) in enumerate(zip(scores, categories, strict=True)):
        if category == 0:  # a label the dataset has no category for
            continue
        common = {"image_id": image_id, "category_id": category, "score": score}
        bbox.append({**common, "bbox": [round(float(x), 2) for x in boxes[k]]})
        rle = coco_mask.encode(np.asfortranarray(masks[k]))
        rle["counts"] = rle["counts"].decode("ascii")
        segm.append({**common, "segmentation": rle})
    return {"bbox": bbox, "segm": segm}


def average_precision(coco_gt: COCO, results: list[dict[str, Any]], iou_type: str) -> float:
    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return max(float(evaluator.stats[0]), 0.0)  # -1 means "no ground truth"


@torch.inference_mode()
def evaluate(model: torch.nn.Module, loader: DataLoader, dataset: CocoInstances, workers: Workers,
             autocast_dtype: torch.dtype | None = None) -> dict[str, float]:
    model.eval()
    device = workers.device
    detections: Detections = {"bbox": [], "segm": []}
    for cpu_images, targets in tqdm(loader, desc="eval", unit="batch", disable=not workers.is_main, leave=False):
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            outputs = model(images_on(device, cpu_images))
        for output, target in zip(outputs, targets, strict=True):
            found = to_coco_results(output, int(target["image_id"]), dataset.label_to_category)
            detections["bbox"] += found["bbox"]
            detections["segm"] += found["segm"]
    gathered = distributed.gather(workers, detections)
    accuracy = None
    if workers.is_main:
        accuracy = {
            "BBOX": average_precision(dataset.coco, [d for part in gathered for d in part["bbox"]], "bbox"),
            "SEGM": average_precision(dataset.coco, [d for part in gathered for d in part["segm"]], "segm"),
        }
    return distributed.broadcast(workers, accuracy)
