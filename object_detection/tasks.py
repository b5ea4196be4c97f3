"""Invoke collection `maskrcnn`: the Mask R-CNN benchmark's dataset (and, later, its runs)."""

from __future__ import annotations

from common.dataset_tasks import dataset_collection
from object_detection import download_dataset, verify_dataset

ns = dataset_collection("maskrcnn", download_dataset.main, verify_dataset.main)
