"""One image's detections as the model leaves them, and their boxes and masks as COCO results hold them.

The model keeps masks at the mask head's 28 x 28 (model.py); pasting them into the image and
RLE-encoding them happens here, off the accelerator and per image, so that evaluation can hand
whole images to a process pool. The paste computes what torchvision's `paste_masks_in_image` does, in
fp32 (tests/maskrcnn/test_scoring.py compares the two pixel for pixel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from faster_coco_eval.core import mask as coco_mask
from torch.nn import functional
from torchvision.models.detection.roi_heads import expand_boxes, expand_masks

MASK_THRESHOLD = 0.5


@dataclass(frozen=True)
class ImageDetections:
    """Detections of one image in its original size: boxes (N, 4) x0 y0 x1 y1, scores (N,), COCO
    category ids (N,), mask probabilities (N, 28, 28), as small numpy arrays that pickle cheaply."""

    image_id: int
    height: int
    width: int
    boxes: np.ndarray
    scores: np.ndarray
    categories: np.ndarray
    masks: np.ndarray

    @classmethod
    def from_output(cls, output: dict[str, torch.Tensor], image_id: int, size: tuple[int, int],
                    label_to_category: dict[int, int]) -> ImageDetections:
        """From the model's output; labels without a dataset category (0) are dropped."""
        categories = np.array([label_to_category.get(int(label), 0) for label in output["labels"].cpu()],
                              dtype=np.int64)
        keep = categories != 0
        masks = output["masks"][:, 0] if output["masks"].dim() == 4 else output["masks"]
        return cls(image_id, size[0], size[1], boxes=output["boxes"].float().cpu().numpy()[keep],
                   scores=output["scores"].float().cpu().numpy()[keep], categories=categories[keep],
                   masks=masks.half().cpu().numpy()[keep])

    def rle_counts(self) -> list[str]:
        """Each mask pasted into the image and RLE-encoded: the compressed counts, as COCO results hold them.

        The paste is torchvision's `paste_masks_in_image` (the same padding, box expansion and bilinear
        resize), but each mask is resized into its box only and encoded from there: the pixels outside the
        box are zeros whose runs need no canvas, which makes the work a box's area instead of the image's.
        """
        if len(self.boxes) == 0:
            return []
        padded, scale = expand_masks(torch.from_numpy(self.masks).float()[:, None], padding=1)
        boxes = expand_boxes(torch.from_numpy(self.boxes), scale).to(torch.int64).tolist()
        uncompressed = [{"size": [self.height, self.width], "counts": self._counts(mask[0], box)}
                        for mask, box in zip(padded, boxes, strict=True)]
        return [rle["counts"].decode("ascii") for rle in coco_mask.frPyObjects(uncompressed, self.height, self.width)]

    def _counts(self, mask: torch.Tensor, box: list[int]) -> list[int]:
        """Column-major run lengths (zeros first) of one pasted, thresholded mask."""
        height, width = self.height, self.width
        x_a, y_a, x_b, y_b = box
        w, h = max(x_b - x_a + 1, 1), max(y_b - y_a + 1, 1)
        resized = functional.interpolate(mask[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        x_0, x_1, y_0, y_1 = max(x_a, 0), min(x_b + 1, width), max(y_a, 0), min(y_b + 1, height)
        crop = (resized[y_0 - y_a : y_1 - y_a, x_0 - x_a : x_1 - x_a] > MASK_THRESHOLD).numpy()
        if crop.size == 0:
            return [height * width]
        columns = np.zeros((crop.shape[1], height), dtype=bool)  # the box's columns, full height
        columns[:, y_0 : y_0 + crop.shape[0]] = crop.T
        flat = columns.ravel()
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        runs = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
        if flat[0]:
            runs.insert(0, 0)
        runs[0] += x_0 * height  # the zero columns left of the box
        after = (width - x_0 - crop.shape[1]) * height  # and right of it
        if flat[-1]:
            runs.append(after)
        else:
            runs[-1] += after
        return runs

    def xywh(self) -> np.ndarray:
        """The boxes as COCO results hold them: x, y, width, height, rounded to 0.01 px."""
        xywh = self.boxes.astype(np.float64)
        xywh[:, 2:] -= xywh[:, :2]
        return np.array([round(x, 2) for x in xywh.ravel().tolist()], dtype=np.float64).reshape(-1, 4)
