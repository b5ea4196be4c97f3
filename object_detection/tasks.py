"""Invoke collection `maskrcnn`: the Mask R-CNN benchmark's dataset and its timed runs."""

from __future__ import annotations

from common.datasets.tasks import dataset_collection
from common.mlperf.tasks import run_task
from object_detection import download_dataset, run_and_time, verify_dataset

ns = dataset_collection("maskrcnn", download_dataset.main, verify_dataset.main)
ns.add_task(run_task(
    "maskrcnn", run_and_time.main,
    "Timed Mask R-CNN runs: RESULT lines, MLPerf logs in results/<system>/maskrcnn/, the 3.1.0 verdict.",
    mlperf_runs=5, sample_help="train on the sample dataset"))
