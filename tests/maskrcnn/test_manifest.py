"""The shipped Mask R-CNN manifest fetches both backbones to where the trainer looks for them."""

from __future__ import annotations

from pathlib import Path

from common.datasets.manifest import load_manifest
from object_detection.download_dataset import MANIFEST
from object_detection.layout import CocoLayout


def test_prepare_fetches_torchvisions_and_the_references_resnet50_weights(tmp_path: Path) -> None:
    layout = CocoLayout(tmp_path)
    fetched = {tmp_path / entry.path: entry for entry in load_manifest(MANIFEST).downloads}
    assert fetched[layout.backbone_weights("torchvision")].checksum is not None
    caffe2 = fetched[layout.backbone_weights("caffe2")]
    assert caffe2.url == "https://dl.fbaipublicfiles.com/detectron/ImageNetPretrained/MSRA/R-50.pkl"
    assert caffe2.extract_to is None
