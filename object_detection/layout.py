"""Where the Mask R-CNN files live inside --data-dir.

The COCO part is the reference's layout (`datasets/coco/...`), so a directory prepared by the
MLPerf scripts works here and the other way round. The backbone weights are kept with the data so
training never fetches them implicitly: torchvision's ResNet-50 ImageNet state_dict (the default,
open division) and the reference's Caffe2 `R-50.pkl` (`--backbone caffe2`, closed division).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Split = Literal["train", "val"]
SPLITS: tuple[Split, ...] = ("train", "val")

# torchvision names weight files by the first 8 hex digits of their sha256.
WEIGHTS_FILENAME = "resnet50-0676ba61.pth"
CAFFE2_WEIGHTS_FILENAME = "R-50.pkl"


@dataclass(frozen=True)
class CocoLayout:
    """Paths the trainer reads, all below `data_dir`."""

    data_dir: Path

    @property
    def coco_dir(self) -> Path:
        return self.data_dir / "coco"

    def images_dir(self, split: Split) -> Path:
        return self.coco_dir / f"{split}2017"

    def annotations(self, split: Split) -> Path:
        return self.coco_dir / "annotations" / f"instances_{split}2017.json"

    @property
    def weights(self) -> Path:
        return self.data_dir / "weights" / WEIGHTS_FILENAME

    @property
    def caffe2_weights(self) -> Path:
        return self.data_dir / "weights" / CAFFE2_WEIGHTS_FILENAME

    def backbone_weights(self, backbone: str) -> Path:
        return self.caffe2_weights if backbone == "caffe2" else self.weights

    def required(self, backbone: str = "torchvision") -> list[Path]:
        """Files and folders that must exist before training with `backbone` starts."""
        return [
            *(self.images_dir(s) for s in SPLITS),
            *(self.annotations(s) for s in SPLITS),
            self.backbone_weights(backbone),
        ]
