"""Invoke collection `gnmt`: the GNMT benchmark's dataset and its timed runs."""

from __future__ import annotations

from common.datasets.tasks import dataset_collection
from common.mlperf.tasks import run_task
from translation import download_dataset, run_and_time, verify_dataset

ns = dataset_collection("gnmt", download_dataset.main, verify_dataset.main)
ns.add_task(run_task(
    "gnmt", run_and_time.main,
    "Timed GNMT runs: RESULT lines, MLPerf logs in results/<system>/gnmt/, the 0.7.0 verdict.",
    mlperf_runs=10, sample_help="small model on the sample corpus"))
