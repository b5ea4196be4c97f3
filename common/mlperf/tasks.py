"""The Invoke task `<benchmark>.run`: timed runs through the benchmark's run_and_time."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from invoke import Exit, Task, task

from common.datasets.steps import DATA_DIR_ENV, DEFAULT_DATA_DIR

Main = Callable[[Sequence[str] | None], int]
# Where runs go when they are not here: called with the task's context and options
# (common/backendai/benchmark_tasks.py runs them as Backend.AI batch sessions).
ClusterRun = Callable[..., None]


def run_task(name: str, run_main: Main, description: str, mlperf_runs: int, sample_help: str,
             cluster_run: ClusterRun, cluster_help: dict[str, str]) -> Task:
    """A `run` task bound to one benchmark's run_and_time.main and its `<name>.data_dir` setting;
    `--on-cluster` hands the runs to `cluster_run`."""

    def run(c, data_dir=None, seed=None, runs=1, nproc_per_node="1", sample=False, results_dir="results",
            system=None, on_cluster=False, image=None, vfolder=None, results_vfolder=None, nodes=1,
            cluster_mode="single-node", gpus_per_node="0", gpu_slot="cuda.device", cpus_per_node=2,
            mem_per_node="8g", shmem=None, timeout=4 * 3600, start_timeout=600, resource_group=None,
            probe=False, probe_evaluations=3, probe_minutes=None):
        probe_args = probe_options(probe, probe_evaluations, probe_minutes)
        if on_cluster:
            cluster_run(c, image=image, vfolder=vfolder, results_vfolder=results_vfolder, nodes=str(nodes),
                        cluster_mode=cluster_mode, gpus_per_node=float(gpus_per_node), gpu_slot=gpu_slot,
                        cpus_per_node=int(cpus_per_node), mem_per_node=mem_per_node, shmem=shmem, runs=int(runs),
                        seed=None if seed is None else int(seed), system=system, sample=sample,
                        timeout=float(timeout), start_timeout=float(start_timeout), results_dir=results_dir,
                        resource_group=resource_group, run_args=probe_args)
            return
        data_dir = (data_dir or os.environ.get(DATA_DIR_ENV)
                    or c.config.get(name, {}).get("data_dir", DEFAULT_DATA_DIR))
        argv = ["--data-dir", str(data_dir), "--runs", str(runs), "--nproc-per-node", str(nproc_per_node),
                "--results-dir", results_dir, *(["--seed", str(seed)] if seed is not None else []),
                *(["--system", system] if system else []), *(["--sample"] if sample else []), *probe_args]
        if (code := run_main(argv)) != 0:
            raise Exit(code=code)

    run.__doc__ = description
    return task(run, auto_shortflags=False, help={
        "data_dir": f"dataset root (default: ${DATA_DIR_ENV}, else {name}.data_dir)",
        "seed": "seed of the first run, the next ones counting on (default: a random seed per run, as a "
                "submission needs)", "runs": f"seeded runs (MLPerf: {mlperf_runs})",
        "nproc_per_node": "workers on this node (torchrun); auto: one per GPU", "sample": sample_help,
        "results_dir": "root of the results layout",
        "system": "system name in the results layout (on a cluster default: from what the session got, "
                  "e.g. bai-2x8xH100, -open at the end for an open-division series)",
        "probe": "stop each run once its time to train can be projected and print the projection; the log is "
                 "kept as probe_<i>.txt, never scored (results.project reads it)",
        "probe_evaluations": "a probe stops after this many evaluations (default 3)",
        "probe_minutes": "a probe stops this many minutes after run_start at the latest",
        **cluster_help})


def probe_options(probe: bool, evaluations: int | str, minutes: float | str | None) -> list[str]:
    """run_and_time's probe options (here and in a cluster session's command line)."""
    if not probe:
        return []
    return ["--probe", "--probe-evaluations", str(int(evaluations)),
            *(["--probe-minutes", str(float(minutes))] if minutes else [])]
