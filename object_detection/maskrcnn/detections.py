"""One image's detections as the model leaves them, and their COCO result entries.

The model keeps masks at the mask head's 28 x 28 (model.py); pasting them into the image and
RLE-encoding them happens here, off the accelerator and per image, so that evaluation can hand
whole images to a process pool. The paste is torchvision's own (`paste_masks_in_image`), in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from faster_coco_eval.core import mask as coco_mask
from torchvision.models.detection.roi_heads import paste_masks_in_image

MASK_THRESHOLD = 0.5

Result = dict[str, Any]


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

    def binary_masks(self) -> np.ndarray:
        """(H, W, N) uint8 in Fortran order, what RLE encoding reads without a copy."""
        if len(self.boxes) == 0:
            return np.zeros((self.height, self.width, 0), dtype=np.uint8, order="F")
        probabilities = torch.from_numpy(self.masks).float()[:, None]
        pasted = paste_masks_in_image(probabilities, torch.from_numpy(self.boxes), (self.height, self.width))
        return np.asfortranarray((pasted[:, 0] > MASK_THRESHOLD).permute(1, 2, 0).numpy().astype(np.uint8))

    def coco_results(self) -> tuple[list[Result], list[Result]]:
        """COCO "bbox" (x, y, w, h rounded to 0.01 px) and "segm" (RLE) result entries."""
        xywh = self.boxes.astype(np.float64)
        xywh[:, 2:] -= xywh[:, :2]
        rles = coco_mask.encode(self.binary_masks()) if len(self.boxes) else []
        bbox, segm = [], []
        for k, rle in enumerate(rles):
            common = {"image_id": self.image_id, "category_id": int(self.categories[k]),
                      "score": float(self.scores[k])}
            bbox.append({**common, "bbox": [round(float(x), 2) for x in xywh[k]]})
            counts = rle["counts"]
            segm.append({**common, "segmentation": {"size": list(rle["size"]), "counts":
                         counts.decode("ascii") if isinstance(counts, bytes) else counts}})
        return bbox, segm

