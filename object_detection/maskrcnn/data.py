"""COCO reading for training and evaluation, filtered and batched as maskrcnn-benchmark does.

Training keeps the images the reference keeps (`remove_images_without_annotations`: at least one
annotation, crowd regions included, with a box wider and taller than 1 pixel, so an image with
only crowd regions trains as one without objects), drops crowd annotations and boxes left without
area inside the image from the targets, and maps COCO category ids onto contiguous labels 1..N in
id order (`json_category_id_to_contiguous_id`). Batches group images by aspect ratio (landscape /
portrait), as the reference's `GroupedBatchSampler` with two groups does. The annotations are numpy
arrays that the loader's processes share (annotations.py); images are decoded by torchvision.io
(libjpeg-turbo, straight into a tensor: the same pixels as PIL, without its copy).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as coco_mask
from torch.utils.data import Dataset, Sampler
from torchvision.io import ImageReadMode, decode_image

from object_detection.maskrcnn.annotations import AnnotationsError, CompactCoco
from object_detection.maskrcnn.transforms import RandomHorizontalFlip, Target


class DatasetError(RuntimeError):
    """The dataset folder lacks a file or holds one that is not COCO."""


def load_annotations(annotations: Path) -> CompactCoco:
    try:
        return CompactCoco.load(annotations)
    except AnnotationsError as error:
        raise DatasetError(str(error)) from error


def decode_mask(segmentation: list | dict, height: int, width: int) -> np.ndarray:
    """One annotation's mask at full image size, as pycocotools rasterises polygons and RLEs."""
    if isinstance(segmentation, list):
        rles = coco_mask.frPyObjects(segmentation, height, width)
        return coco_mask.decode(coco_mask.merge(rles))
    if isinstance(segmentation.get("counts"), list):
        segmentation = coco_mask.frPyObjects(segmentation, height, width)
    return coco_mask.decode(segmentation)


def boxes_in_image(xywh: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """COCO's x, y, w, h boxes as x0, y0, x1, y1 clipped to the image, and which of them keep an area
    (the reference drops the others)."""
    boxes = xywh.clone()
    boxes[:, 2:] += boxes[:, :2]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return boxes, (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


class CocoInstances(Dataset[tuple[torch.Tensor, Target]]):
    """COCO instances as (uint8 CHW image, target) pairs for torchvision's Mask R-CNN; for evaluation
    the target is the image id alone (scoring reads the annotation file)."""

    def __init__(self, images_dir: Path, annotations: Path, *, train: bool) -> None:
        self.images_dir = images_dir
        self.annotations = annotations
        self.train = train
        self.coco = load_annotations(annotations)
        self.category_to_label = {int(cid): i + 1 for i, cid in enumerate(self.coco.categories)}
        self.label_to_category = {label: cid for cid, label in self.category_to_label.items()}
        images = np.arange(len(self.coco))
        self.images = images[self.coco.has_valid_annotation] if train else images  # indices into self.coco
        self.flip = RandomHorizontalFlip(0.5) if train else None

    def __len__(self) -> int:
        return len(self.images)

    def aspect_ratio(self, index: int) -> float:
        image = self.images[index]
        return float(self.coco.widths[image]) / float(self.coco.heights[image])

    def _target(self, image: int, height: int, width: int) -> Target:
        annotations = self.coco.annotations_of(image)
        rows = slice(annotations.start, annotations.stop)
        boxes, keep = boxes_in_image(torch.from_numpy(self.coco.boxes[rows].copy()), height, width)
        masks = np.zeros((len(annotations), height, width), dtype=np.uint8)
        for k, annotation in enumerate(annotations):
            masks[k] = decode_mask(self.coco.segmentation(annotation), height, width)
        labels = torch.tensor([self.category_to_label[int(c)] for c in self.coco.category_ids[rows]],
                              dtype=torch.int64)
        return {"boxes": boxes[keep], "labels": labels[keep], "masks": torch.from_numpy(masks)[keep],
                "image_id": torch.tensor(int(self.coco.image_ids[image]))}

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        image_index = int(self.images[index])
        path = self.images_dir / self.coco.file_name(image_index)
        try:
            image = decode_image(str(path), mode=ImageReadMode.RGB)
        except (OSError, RuntimeError) as error:
            raise DatasetError(f"{path}: cannot read image ({error})") from error
        if not self.train:
            return image, {"image_id": torch.tensor(int(self.coco.image_ids[image_index]))}
        target = self._target(image_index, image.shape[1], image.shape[2])
        if self.flip is not None:
            image, target = self.flip(image, target)
        return image, target


def collate(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    return [image for image, _ in batch], [target for _, target in batch]


class GroupedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of images with the same orientation, one worker's share of each epoch.

    Every worker draws the same permutation (seeded by seed and epoch) and takes every
    `world_size`-th index, so the workers' shares are disjoint and together cover the dataset.
    Each worker yields exactly `ceil(len / global batch)` batches (repeating its first ones if
    grouping left it short), since data-parallel workers must step together.
    """

    def __init__(
        self, dataset: CocoInstances, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        self.groups = [int(dataset.aspect_ratio(i) >= 1.0) for i in range(len(dataset))]
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        order = list(range(len(self.groups)))
        random.Random(f"{self.seed}-{self.epoch}").shuffle(order)
        share = order[self.rank :: self.world_size]
        buckets: dict[int, list[int]] = {0: [], 1: []}
        batches: list[list[int]] = []
        for index in share:
            bucket = buckets[self.groups[index]]
            bucket.append(index)
            if len(bucket) == self.batch_size:
                batches.append(list(bucket))
                bucket.clear()
        leftover = buckets[0] + buckets[1]
        batches.extend(leftover[i : i + self.batch_size] for i in range(0, len(leftover), self.batch_size))
        steps = math.ceil(len(order) / (self.batch_size * self.world_size))
        while batches and len(batches) < steps:
            batches.extend(batches[: steps - len(batches)])
        return batches[:steps]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
