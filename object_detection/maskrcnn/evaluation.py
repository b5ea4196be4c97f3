"""COCO evaluation after each epoch (bbox and segm AP@[.5:.95]), without stalling the workers.

Every worker runs inference on its share of the val images and sends the detections (boxes,
scores, 28 x 28 mask probabilities) to rank 0 only; rank 0 scores them in the background
(scoring.Scorer) while the next epoch trains, and shares the scored epochs with every worker when
asked, so that all of them take the same stop decision at the same iteration. A model that makes
no detection scores 0. Inference runs under autocast when `autocast_dtype` is given; the boxes are
decoded in fp32 all the same (model.py).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from object_detection.maskrcnn import distributed
from object_detection.maskrcnn.data import CocoInstances
from object_detection.maskrcnn.detections import ImageDetections
from object_detection.maskrcnn.distributed import Workers
from object_detection.maskrcnn.engine import images_on
from object_detection.maskrcnn.scoring import Scorer, encode, score

BBOX_TARGET = 0.377
SEGM_TARGET = 0.339


def reached_target(accuracy: dict[str, float]) -> bool:
    return accuracy["BBOX"] >= BBOX_TARGET and accuracy["SEGM"] >= SEGM_TARGET


Scored = list[tuple[int, dict[str, float]]]


def until_target(scored: Scored) -> tuple[Scored, int | None]:
    """The scored epochs a run logs, oldest first, up to the first that reached the target, and that epoch."""
    for k, (epoch, accuracy) in enumerate(scored):
        if reached_target(accuracy):
            return scored[: k + 1], epoch
    return scored, None


@torch.inference_mode()
def detect(model: torch.nn.Module, loader: DataLoader, label_to_category: dict[int, int], workers: Workers,
           autocast_dtype: torch.dtype | None = None) -> list[ImageDetections]:
    """This worker's detections on its share of the images, moved off the device."""
    model.eval()
    device = workers.device
    found = []
    for cpu_images, targets in tqdm(loader, desc="eval", unit="batch", disable=not workers.is_main, leave=False):
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            outputs = model(images_on(device, cpu_images))
        for output, image, target in zip(outputs, cpu_images, targets, strict=True):
            size = (int(image.shape[-2]), int(image.shape[-1]))
            found.append(ImageDetections.from_output(output, int(target["image_id"]), size, label_to_category))
    return found


def evaluate(model: torch.nn.Module, loader: DataLoader, dataset: CocoInstances, workers: Workers,
             autocast_dtype: torch.dtype | None = None) -> dict[str, float]:
    """One evaluation, scored in this process on rank 0, its result on every worker."""
    found = distributed.gather_to_main(workers, detect(model, loader, dataset.label_to_category, workers,
                                                        autocast_dtype))
    accuracy = None
    if workers.is_main:
        accuracy = score(dataset.annotations, [encode([d for part in found for d in part])])
    return distributed.broadcast(workers, accuracy)


class Evaluation:
    """A run's evaluations: `start` after an epoch, `results` for the epochs scored since (on every worker)."""

    def __init__(self, scorer: Scorer | None, loader: DataLoader, label_to_category: dict[int, int],
                 workers: Workers, autocast_dtype: torch.dtype | None) -> None:
        self.scorer = scorer  # rank 0's; None elsewhere
        self.loader = loader
        self.label_to_category = label_to_category
        self.workers = workers
        self.autocast_dtype = autocast_dtype

    def start(self, model: torch.nn.Module, epoch: int) -> None:
        found = detect(model, self.loader, self.label_to_category, self.workers, self.autocast_dtype)
        gathered = distributed.gather_to_main(self.workers, found)
        if self.scorer is not None:
            self.scorer.submit(epoch, [d for part in gathered for d in part])

    def results(self, wait: bool = False) -> Scored:
        """(epoch, accuracy) of the epochs scored since the last call, oldest first; with `wait`, all of them.
        A collective: every worker calls it at the same point."""
        done = self.scorer.finished(wait) if self.scorer is not None else None
        return distributed.broadcast(self.workers, done)
