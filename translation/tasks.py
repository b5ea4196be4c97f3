"""Invoke collection `gnmt`: the GNMT benchmark's dataset (and, later, its runs)."""

from __future__ import annotations

from common.dataset_tasks import dataset_collection
from translation import download_dataset, verify_dataset

ns = dataset_collection("gnmt", download_dataset.main, verify_dataset.main)
