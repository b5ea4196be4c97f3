"""Training augmentation: a horizontal flip with probability 0.5, the reference's only one.

Resizing to min 800 / max 1333 and normalisation happen inside the model
(torchvision's GeneralizedRCNNTransform), on the device, for training and evaluation alike.
"""

from __future__ import annotations

import torch

Target = dict[str, torch.Tensor]


def horizontal_flip(image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
    width = image.shape[-1]
    flipped = dict(target)
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    flipped["boxes"] = boxes
    flipped["masks"] = target["masks"].flip(-1)
    return image.flip(-1), flipped


class RandomHorizontalFlip:
    """Flip image, boxes and masks together.

    Draws from torch's global generator, which the DataLoader seeds per worker from the run's seed.
    """

    def __init__(self, probability: float = 0.5) -> None:
        self.probability = probability

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        if torch.rand(()).item() < self.probability:
            return horizontal_flip(image, target)
        return image, target
