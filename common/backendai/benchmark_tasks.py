"""The `--on-cluster` halves of `<benchmark>.prepare` and `<benchmark>.run`.

The benchmark collections (object_detection/tasks.py, translation/tasks.py) hand these to the dataset
and run task builders, which stay free of Backend.AI; the client is imported only when a task runs on a
cluster. Both benchmarks therefore take the same options with the same meaning.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from invoke import Exit

from common.backendai.benchmark import ClusterBenchmark, NodeResources
from common.backendai.errors import BackendAIError, BatchInterruptedError

PREPARE_HELP = {
    "on_cluster": "prepare inside a batch session of --image, into virtual folder --vfolder (created if missing)",
    "upload": "upload a dataset prepared locally in DIR into --vfolder (resumable: skips what the folder holds)",
    "vfolder": "virtual folder of the dataset (default: <benchmark>.vfolder)",
    "image": "benchmark image registered on the cluster, REGISTRY/PROJECT/mlperf-<benchmark>:TAG "
             "(default: <benchmark>.image)",
    "cpus": "CPU cores of the prepare session", "mem": "memory of the prepare session, e.g. 16g",
    "timeout": "seconds before the session is destroyed",
}
RUN_HELP = {
    "on_cluster": "run as Backend.AI batch sessions (one per run) on the cluster of BACKEND_*",
    "image": PREPARE_HELP["image"], "vfolder": "virtual folder holding the prepared dataset",
    "results_vfolder": "virtual folder the runs write their logs to (default: <benchmark>.results_vfolder)",
    "nodes": "containers in the session (cluster_size; rank 0 and the log stay in main1); a list, e.g. 1,2,4: "
             "the series at each count, one after another, and how the throughput and time scale",
    "cluster_mode": "single-node (all containers on one agent) or multi-node (across agents)",
    "gpus_per_node": "GPUs per container (0: CPU, one gloo worker per container)",
    "gpu_slot": "cuda.device (whole GPUs) or cuda.shares (fractional GPUs)",
    "cpus_per_node": "CPU cores per container", "mem_per_node": "memory per container, e.g. 900g",
    "shmem": "shared memory per container for the data loaders (default: 2g per GPU, at least 1g)",
    "timeout": "seconds a run may take before its session is destroyed (reported as timed out)",
    "start_timeout": "seconds the scheduler may keep a session waiting before it is given up",
    "resource_group": "resource group (scaling group) to run in (default: one the project may use)",
}


def _setting(c, benchmark: ClusterBenchmark, key: str) -> str | None:
    return c.config.get(benchmark.name, {}).get(key)


def _image(c, benchmark: ClusterBenchmark, image: str | None) -> str:
    image = image or _setting(c, benchmark, "image")
    if not image:
        raise Exit(f"{benchmark.name}: --on-cluster needs --image REGISTRY/PROJECT/mlperf-{benchmark.name}:TAG "
                   f"(an image registered on the cluster), or {benchmark.name}.image in invoke.yaml", code=2)
    return image


def default_shmem(gpus: float) -> str:
    return f"{max(1, round(2 * gpus))}g"


def prepare_on_cluster(c, benchmark: ClusterBenchmark, *, vfolder: str | None, image: str | None,
                       upload: str | None, sample: bool, seed: int, mirror: str | None, cpus: int, mem: str,
                       timeout: float) -> None:
    task = f"{benchmark.name}.prepare"
    from common.backendai import datasets  # noqa: PLC0415 - the client loads only for cluster work

    vfolder = vfolder or _setting(c, benchmark, "vfolder")
    if not vfolder:
        raise Exit(f"{task}: give --vfolder NAME", code=2)
    try:
        if upload:
            report = datasets.upload_prepared(Path(upload), vfolder)
            print(f"{vfolder}: {len(report.uploaded)} files uploaded ({report.bytes_sent / 1e6:.1f} MB), "
                  f"{len(report.skipped)} already there")
            return
        code = datasets.prepare_in_session(
            benchmark, image=_image(c, benchmark, image), vfolder=vfolder, sample=sample, seed=seed, mirror=mirror,
            resources=NodeResources(cpu=cpus, mem=mem), timeout=timeout,
            say=lambda message: print(message, file=sys.stderr, flush=True))
    except BatchInterruptedError as exc:
        raise Exit(f"{task}: {exc}", code=130) from exc
    except BackendAIError as exc:
        raise Exit(f"{task}: {exc}", code=1) from exc
    if code != 0:
        raise Exit(code=code if 0 < code < 256 else 1)


def run_on_cluster(c, benchmark: ClusterBenchmark, *, image: str | None, vfolder: str | None,
                   results_vfolder: str | None, nodes: str, cluster_mode: str, gpus_per_node: float, gpu_slot: str,
                   cpus_per_node: int, mem_per_node: str, shmem: str | None, runs: int, seed: int | None,
                   system: str | None, sample: bool, timeout: float, start_timeout: float, results_dir: str,
                   run_args: Sequence[str] = (), resource_group: str | None = None) -> None:
    """`run_args`: more run_and_time options for the session's command (a probe's: `--probe ...`)."""
    task = f"{benchmark.name}.run"
    from common.backendai import runs as cluster_runs  # noqa: PLC0415 - the client loads only for cluster work

    if cluster_mode not in ("single-node", "multi-node"):
        raise Exit(f"{task}: --cluster-mode is single-node or multi-node, not {cluster_mode!r}", code=2)
    counts = node_counts(task, nodes)
    if runs < 1:
        raise Exit(f"{task}: --runs must be at least 1", code=2)
    if len(counts) > 1 and system:
        raise Exit(f"{task}: --nodes {nodes} runs one system per node count; leave --system to name each", code=2)
    vfolder = vfolder or _setting(c, benchmark, "vfolder")
    first_failure = 0
    for count in counts:
        code = _series(benchmark, cluster_runs, task, image=_image(c, benchmark, image), vfolder=vfolder or "",
                       results_vfolder=results_vfolder or _setting(c, benchmark, "results_vfolder") or "mlperf-results",
                       nodes=count, cluster_mode=cluster_mode, gpus_per_node=gpus_per_node, gpu_slot=gpu_slot,
                       cpus_per_node=cpus_per_node, mem_per_node=mem_per_node, shmem=shmem, runs=runs, seed=seed,
                       system=system, sample=sample, timeout=timeout, start_timeout=start_timeout,
                       results_dir=results_dir, run_args=run_args, resource_group=resource_group)
        first_failure = first_failure or code
        if code == cluster_runs.INTERRUPTED:
            break
    if len(counts) > 1:
        from common.results import scaling  # noqa: PLC0415 - only for a sweep

        print(scaling.scaling_lines(Path(results_dir), benchmark.name) or "scaling: no run to compare", flush=True)
    if first_failure != 0:
        raise Exit(code=first_failure if 0 < first_failure < 256 else 1)


def node_counts(task: str, nodes: str | int) -> list[int]:
    """`--nodes 2` or a sweep `--nodes 1,2,4` (each count once, in the order given)."""
    try:
        counts = [int(item) for item in str(nodes).split(",") if item.strip()]
    except ValueError:
        raise Exit(f"{task}: --nodes is a count or a list of counts (1,2,4), not {nodes!r}", code=2) from None
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        raise Exit(f"{task}: --nodes wants counts of at least 1, each once, not {nodes!r}", code=2)
    return counts


def _series(benchmark: ClusterBenchmark, cluster_runs, task: str, *, image: str, vfolder: str, results_vfolder: str,
            nodes: int, cluster_mode: str, gpus_per_node: float, gpu_slot: str, cpus_per_node: int,
            mem_per_node: str, shmem: str | None, runs: int, seed: int | None, system: str | None, sample: bool,
            timeout: float, start_timeout: float, results_dir: str, run_args: Sequence[str],
            resource_group: str | None) -> int:
    spec = cluster_runs.ClusterRun(
        benchmark=benchmark, image=image, data_vfolder=vfolder, results_vfolder=results_vfolder,
        nodes=nodes, cluster_mode=cluster_mode,
        resources=NodeResources(cpu=cpus_per_node, mem=mem_per_node, gpus=gpus_per_node, gpu_slot=gpu_slot,
                                shmem=shmem or default_shmem(gpus_per_node)),
        runs=runs, seed=seed, system=system, sample=sample, timeout=timeout, start_timeout=start_timeout,
        results_dir=Path(results_dir), train_args=tuple(run_args), compliance="--probe" not in run_args,
        resource_group=resource_group)
    try:
        return cluster_runs.run_series(spec)
    except BackendAIError as exc:
        raise Exit(f"{task}: {exc}", code=1) from exc
