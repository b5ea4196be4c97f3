"""Invoke collection `maskrcnn`: the Mask R-CNN benchmark's dataset and its timed runs."""

from __future__ import annotations

import os

from invoke import Exit, task

from common.dataset_steps import DATA_DIR_ENV
from common.dataset_tasks import dataset_collection
from object_detection import download_dataset, run_and_time, verify_dataset

ns = dataset_collection("maskrcnn", download_dataset.main, verify_dataset.main)


@task(help={"data_dir": "dataset root (default: $MLPERF_DATA_DIR, else maskrcnn.data_dir)",
            "seed": "seed of the first run (default: random)", "runs": "seeded runs (MLPerf: 5)",
            "nproc_per_node": "workers on this node (torchrun)", "sample": "train on the sample dataset",
            "results_dir": "root of the results layout", "system": "system name in the results layout"})
def run(c, data_dir=None, seed=None, runs=1, nproc_per_node=1, sample=False, results_dir="results", system=None):
    """Timed Mask R-CNN runs: RESULT lines, MLPerf logs in results/<system>/maskrcnn/, the 3.1.0 verdict."""
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or c.config.get("maskrcnn", {}).get("data_dir", "data")
    argv = ["--data-dir", str(data_dir), "--runs", str(runs), "--nproc-per-node", str(nproc_per_node),
            "--results-dir", results_dir, *(["--seed", str(seed)] if seed is not None else []),
            *(["--system", system] if system else []), *(["--sample"] if sample else [])]
    if (code := run_and_time.main(argv)) != 0:
        raise Exit(code=code)


ns.add_task(run)
