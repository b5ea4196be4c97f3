"""Invoke tasks `download`, `verify` and `prepare` for a benchmark's dataset.

Both benchmarks get the same three tasks from here, bound to their own download_dataset and
verify_dataset modules and to their own config keys (`<name>.data_dir`, `<name>.mirror_env`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from invoke import Collection, Exit, task

from common.datasets.download import MIRROR_ENV
from common.datasets.steps import DATA_DIR_ENV, DEFAULT_DATA_DIR

Main = Callable[[Sequence[str] | None], int]
# Where the dataset is prepared when it is not here: called with the task's context and options
# (common/backendai/benchmark_tasks.py prepares it in a Backend.AI virtual folder).
ClusterPrepare = Callable[..., None]

HELP = {
    "data_dir": f"dataset root (default: ${DATA_DIR_ENV}, else <collection>.data_dir from invoke.yaml)",
    "mirror": "base URL of a mirror serving the original paths (default: $<collection>.mirror_env)",
    "from_dir": "take the archives from this directory instead of the network",
    "sample": "the small generated sample (same layout) instead of the real dataset",
    "seed": "seed of the sample generator",
    "jobs": "files handled at once",
    "full": "re-hash every file, ignoring stamps",
}


def dataset_collection(name: str, download_main: Main, verify_main: Main,
                       cluster_prepare: ClusterPrepare, cluster_help: dict[str, str]) -> Collection:
    """A collection with download, verify and prepare, configured under `name`; `prepare --on-cluster`
    and `prepare --upload DIR` go to `cluster_prepare`."""

    def settings(c) -> dict:
        return c.config.get(name, {})

    def common_argv(c, data_dir: str | None, jobs: int, sample: bool) -> list[str]:
        data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or settings(c).get("data_dir", DEFAULT_DATA_DIR)
        return ["--data-dir", str(data_dir), "--jobs", str(jobs), *(["--sample"] if sample else [])]

    def call(main: Main, argv: list[str]) -> None:
        if (code := main(argv)) != 0:
            raise Exit(code=code)

    def download_argv(c, data_dir, mirror, from_dir, sample, seed, jobs) -> list[str]:
        argv = [*common_argv(c, data_dir, jobs, sample), "--seed", str(seed)]
        mirror = mirror or os.environ.get(settings(c).get("mirror_env", MIRROR_ENV))
        if mirror:
            argv += ["--mirror", mirror]
        if from_dir:
            argv += ["--from", from_dir]
        return argv

    @task(help={k: HELP[k] for k in ("data_dir", "mirror", "from_dir", "sample", "seed", "jobs")})
    def download(c, data_dir=None, mirror=None, from_dir=None, sample=False, seed=0, jobs=4):
        """Download and extract the dataset (and preprocess it where the benchmark needs that)."""
        call(download_main, download_argv(c, data_dir, mirror, from_dir, sample, seed, jobs))

    @task(help={k: HELP[k] for k in ("data_dir", "sample", "jobs", "full")})
    def verify(c, data_dir=None, sample=False, jobs=4, full=False):
        """Check every file's checksum and the layout; exits non-zero naming each problem."""
        call(verify_main, [*common_argv(c, data_dir, jobs, sample), *(["--full"] if full else [])])

    @task(auto_shortflags=False, help={**{k: HELP[k] for k in ("data_dir", "mirror", "from_dir", "sample", "seed",
                                                               "jobs")}, **cluster_help})
    def prepare(c, data_dir=None, mirror=None, from_dir=None, sample=False, seed=0, jobs=4, on_cluster=False,
                upload=None, vfolder=None, image=None, cpus=2, mem="8g", timeout=6 * 3600):
        """download, then verify: the dataset is ready for training when this succeeds (here, or in a
        Backend.AI virtual folder with --on-cluster / --upload DIR)."""
        if on_cluster or upload:
            mirror = mirror or os.environ.get(settings(c).get("mirror_env", MIRROR_ENV))
            cluster_prepare(c, vfolder=vfolder, image=image, upload=upload, sample=sample, seed=seed, mirror=mirror,
                            cpus=int(cpus), mem=mem, timeout=float(timeout))
            return
        call(download_main, download_argv(c, data_dir, mirror, from_dir, sample, seed, jobs))
        call(verify_main, common_argv(c, data_dir, jobs, sample))

    ns = Collection(name, download, verify, prepare)
    ns.configure({name: {"data_dir": DEFAULT_DATA_DIR, "mirror_env": MIRROR_ENV}})
    return ns
