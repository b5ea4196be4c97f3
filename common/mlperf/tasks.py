"""The Invoke task `<benchmark>.run`: timed runs through the benchmark's run_and_time."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from invoke import Exit, Task, task

from common.datasets.steps import DATA_DIR_ENV, DEFAULT_DATA_DIR

Main = Callable[[Sequence[str] | None], int]


def run_task(name: str, run_main: Main, description: str, mlperf_runs: int, sample_help: str) -> Task:
    """A `run` task bound to one benchmark's run_and_time.main and its `<name>.data_dir` setting."""

    def run(c, data_dir=None, seed=None, runs=1, nproc_per_node=1, sample=False, results_dir="results",
            system=None):
        data_dir = (data_dir or os.environ.get(DATA_DIR_ENV)
                    or c.config.get(name, {}).get("data_dir", DEFAULT_DATA_DIR))
        argv = ["--data-dir", str(data_dir), "--runs", str(runs), "--nproc-per-node", str(nproc_per_node),
                "--results-dir", results_dir, *(["--seed", str(seed)] if seed is not None else []),
                *(["--system", system] if system else []), *(["--sample"] if sample else [])]
        if (code := run_main(argv)) != 0:
            raise Exit(code=code)

    run.__doc__ = description
    return task(run, help={
        "data_dir": f"dataset root (default: ${DATA_DIR_ENV}, else {name}.data_dir)",
        "seed": "seed of the first run (default: random)", "runs": f"seeded runs (MLPerf: {mlperf_runs})",
        "nproc_per_node": "workers on this node (torchrun)", "sample": sample_help,
        "results_dir": "root of the results layout", "system": "system name in the results layout"})
