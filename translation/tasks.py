"""Invoke collection `gnmt`: the GNMT benchmark's dataset and its timed runs."""

from __future__ import annotations

from functools import partial

from common.backendai import benchmark_tasks as cluster
from common.backendai.benchmark import ClusterBenchmark
from common.datasets.tasks import dataset_collection
from common.mlperf.tasks import run_task
from translation import download_dataset, run_and_time, verify_dataset

CLUSTER = ClusterBenchmark(name="gnmt", result_name="RNN_TRANSLATOR", ruleset="0.7.0",
                           run_module="translation.run_and_time", download_module="translation.download_dataset",
                           verify_module="translation.verify_dataset")

ns = dataset_collection("gnmt", download_dataset.main, verify_dataset.main,
                        partial(cluster.prepare_on_cluster, benchmark=CLUSTER), cluster.PREPARE_HELP)
ns.add_task(run_task(
    "gnmt", run_and_time.main,
    "Timed GNMT runs: RESULT lines, MLPerf logs in results/<system>/gnmt/, the 0.7.0 verdict.",
    mlperf_runs=10, sample_help="small model on the sample corpus",
    cluster_run=partial(cluster.run_on_cluster, benchmark=CLUSTER), cluster_help=cluster.RUN_HELP))
