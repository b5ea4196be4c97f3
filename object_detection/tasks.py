"""Invoke collection `maskrcnn`: the Mask R-CNN benchmark's dataset and its timed runs."""

from __future__ import annotations

from functools import partial

from common.backendai import benchmark_tasks as cluster
from common.backendai.benchmark import ClusterBenchmark
from common.datasets.tasks import dataset_collection
from common.mlperf.tasks import run_task
from object_detection import download_dataset, run_and_time, verify_dataset

CLUSTER = ClusterBenchmark(
    name="maskrcnn", result_name="OBJECT_DETECTION", ruleset="3.1.0", run_module="object_detection.run_and_time",
    download_module="object_detection.download_dataset", verify_module="object_detection.verify_dataset")

ns = dataset_collection("maskrcnn", download_dataset.main, verify_dataset.main,
                        partial(cluster.prepare_on_cluster, benchmark=CLUSTER), cluster.PREPARE_HELP)
ns.add_task(run_task(
    "maskrcnn", run_and_time.main,
    "Timed Mask R-CNN runs: RESULT lines, MLPerf logs in results/<system>/maskrcnn/, the 3.1.0 verdict.",
    mlperf_runs=5, sample_help="train on the sample dataset",
    cluster_run=partial(cluster.run_on_cluster, benchmark=CLUSTER), cluster_help=cluster.RUN_HELP))
