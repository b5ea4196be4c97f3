"""Runs of an implementation as Backend.AI batch sessions, with the project's run machinery.

Each run is one cluster session of the implementation's image (common.backendai.runs: one session per run,
the log brought home into results/<system>/<benchmark>/ as soon as it ends, the compliance verdict, the summary
at the end); only the session itself differs from the project's own benchmarks: the image's launcher
(implementations.slurm_world) as the startup command, the plan in its environment, the virtual folders the
implementation's mounts need, and the bootstrap's links to them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from common.backendai import client as bai_client
from common.backendai import runs
from common.backendai.benchmark import ClusterBenchmark
from common.backendai.errors import BackendAIError
from common.results import systems
from implementations.importer import Implementation
from implementations.plan import LAUNCHER_IN_IMAGE, RunPlan, make_plan
from implementations.slurm_world import SPEC_ENV

LINKS_ENV = "MLPERF_IMPL_LINKS"
STARTUP = f"cd {LAUNCHER_IN_IMAGE} && exec python3 -m implementations.slurm_world run"


@dataclass(frozen=True)
class ImplementationRun:
    """What `impl.run` asked for, beyond the series spec: the config and how to plan each session."""

    impl: Implementation
    config: str
    plan_options: dict


def benchmark(impl: Implementation) -> ClusterBenchmark:
    """The implementation as the run machinery names a benchmark (results folder, RESULT tag, ruleset)."""
    return ClusterBenchmark(name=impl.benchmark, result_name=impl.benchmark.upper(), ruleset=impl.ruleset,
                            run_module="implementations.slurm_world", download_module="", verify_module="")


def session_job(plan: RunPlan, spec: runs.ClusterRun, *, seed: int) -> bai_client.BatchJob:
    env = {SPEC_ENV: json.dumps(plan.spec(seed=seed, system=spec.system or "auto")), LINKS_ENV: plan.links(),
           "MLPERF_SYSTEM": spec.system or "auto", systems.IMAGE_ENV: spec.image, "PYTHONUNBUFFERED": "1",
           **spec.env}
    folders = plan.vfolders()
    return bai_client.BatchJob(
        image=spec.image, command=STARTUP, resources=spec.resources.slots(), shmem=spec.resources.shmem, env=env,
        mounts={name: None for name in folders}, read_only={name for name, ro in folders.items() if ro},
        name=plan.session, timeout=spec.timeout, cluster_size=spec.nodes, cluster_mode=spec.cluster_mode,
        start_timeout=spec.start_timeout)


def job_builder(run: ImplementationRun) -> Callable[..., bai_client.BatchJob]:
    def make_job(spec: runs.ClusterRun, *, seed: int, session: str) -> bai_client.BatchJob:
        plan = make_plan(run.impl, run.config, session=session, results_vfolder=spec.results_vfolder,
                         nodes=spec.nodes, **run.plan_options)
        return session_job(plan, spec, seed=seed)

    return make_job


def check_folders(plan: RunPlan, config: bai_client.APIConfig | None) -> None:
    """Every folder the mounts read from must exist (a run never creates data); the results folder is made."""
    names = bai_client.vfolder_names(config)
    for mount in plan.mounts:
        if mount.vfolder and mount.vfolder != plan.results_vfolder and mount.vfolder not in names:
            raise BackendAIError(f"virtual folder {mount.vfolder} (for {mount.container_path}, {mount.origin}) does "
                                 "not exist on this cluster; prepare it first (impl.prepare, or --upload DIR)")
    if plan.results_vfolder not in names:
        bai_client.ensure_vfolder(plan.results_vfolder, config=config)


def run_series(run: ImplementationRun, spec: runs.ClusterRun, plan: RunPlan,
               config: bai_client.APIConfig | None = None) -> int:
    check_folders(plan, config)
    return runs.run_series(spec, config=config, make_job=job_builder(run))
