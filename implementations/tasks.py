"""Invoke collection `impl`: published MLPerf implementations as Backend.AI runs.

    invoke impl.inspect PATH                       what the folder is: benchmark, launch, configs, mounts
    invoke impl.import PATH --image REF            its image for Backend.AI: built, checked, pushed (--register)
    invoke impl.convert SRC DEST --impl PATH       a published image made one in the registry, without Docker
    invoke impl.check REF                          the Backend.AI contract of a local implementation image
    invoke impl.prepare --benchmark llama31_8b     its data as its reference documents it (or into a vfolder)
    invoke impl.run --impl PATH --config C --dry-run | --on-cluster

Nothing here loads the Backend.AI SDK or Docker until a task needs them.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

from invoke import Collection, Exit, task

from common import extras
from common.backendai import benchmark_tasks
from common.backendai.benchmark import ClusterBenchmark, NodeResources
from common.datasets.tasks import dataset_collection
from common.labels.rules import parse_assignments
from implementations import importer, plan, scripts, shell
from implementations.llama31_8b import download as llama_download
from implementations.llama31_8b import verify as llama_verify

INPUT_ERRORS = (importer.NotAnImplementationError, importer.UnknownConfigError, scripts.UnmappableLaunchError,
                plan.PlanError, shell.ConfigError, ValueError, OSError)
DATASETS = {
    "llama31_8b": dataset_collection(
        "llama31_8b", llama_download.main, llama_verify.main,
        partial(benchmark_tasks.prepare_on_cluster, benchmark=ClusterBenchmark(
            name="llama31_8b", result_name="LLAMA31_8B", ruleset="5.1.0", run_module="",
            download_module="implementations.llama31_8b.download", verify_module="implementations.llama31_8b.verify")),
        benchmark_tasks.PREPARE_HELP),
}
IMPL_HELP = {"impl": "implementation folder: <org>/benchmarks/<benchmark>/implementations/<impl> or a "
                     "mlcommons/training reference folder",
             "benchmark": "the MLPerf benchmark name when the folder does not say it (e.g. llama31_8b)",
             "dockerfile": "which Dockerfile* of the folder (default: Dockerfile, else the first)"}


def _read(name: str, path: str, benchmark: str | None = None, dockerfile: str | None = None) -> importer.Implementation:
    try:
        return importer.read_implementation(Path(path), benchmark=benchmark, dockerfile=dockerfile)
    except INPUT_ERRORS as error:
        raise Exit(f"impl.{name}: {error}", code=2) from error


@task(positional=["path"], help={"path": IMPL_HELP["impl"], "benchmark": IMPL_HELP["benchmark"],
                                 "dockerfile": IMPL_HELP["dockerfile"]})
def inspect(c, path, benchmark=None, dockerfile=None):
    """What an implementation folder is: benchmark, framework, launch, configs (nodes x GPUs x batch), mounts."""
    impl = _read("inspect", path, benchmark, dockerfile)
    try:
        configs = [impl.config(name) for name in impl.config_names]
    except INPUT_ERRORS as error:
        raise Exit(f"impl.inspect: {error}", code=2) from error
    print(importer.describe(impl, configs))


@task(positional=["path"], iterable=["build_arg"], help={
    "path": IMPL_HELP["impl"], "image": "reference to build, REGISTRY/PROJECT/NAME:TAG (a tag Backend.AI accepts)",
    "profile": "label profile from images/labels.yaml (cuda; cpu for images without GPUs)",
    "build_arg": "KEY=VALUE for the implementation's Dockerfile ARGs (repeatable), e.g. FROM_IMAGE_NAME=...",
    "network": "network mode of the build containers (host reaches a mirror on 127.0.0.1)",
    "no_cache": "ignore the layer cache", "push": "push to the registry and wrap in a manifest list",
    "register": "rescan it on the cluster of BACKEND_* (admin keys) after the push",
    "insecure": "plain HTTP to the registry", "benchmark": IMPL_HELP["benchmark"],
    "dockerfile": IMPL_HELP["dockerfile"]})
def import_(c, path, image, profile="cuda", build_arg=None, network=None, no_cache=False, push=False, register=False,
            insecure=False, benchmark=None, dockerfile=None):
    """An implementation's image for Backend.AI: its Dockerfile plus the project's final stage, built, checked
    against the image contract, pushed (--push) and registered (--register)."""
    from common.imagebuild.build import ImageBuildError  # noqa: PLC0415 - Docker only when building
    from implementations import image as impl_image  # noqa: PLC0415

    impl = _read("import", path, benchmark, dockerfile)
    print(importer.describe(impl, [impl.config(name) for name in impl.config_names]))
    try:
        impl_image.build(impl, image, profile=profile, build_args=parse_assignments(build_arg or [], "--build-arg"),
                         network_mode=network, nocache=no_cache)
    except (ImageBuildError, impl_image.ImplementationImageError, ValueError) as error:
        raise Exit(f"impl.import: {error}", code=1) from error
    _report_contract(image, impl_image.check(image))
    if push:
        _push(image, insecure)
    if register:
        _register(image)


def _report_contract(image: str, report) -> None:
    for line in report.lines():
        print(line)
    if not report.ok:
        raise Exit(f"impl: {image}: {len(report.failures)} contract check(s) failed", code=1)


def _push(image: str, insecure: bool) -> None:
    import docker  # noqa: PLC0415

    from common.imagebuild.push import engine_push, publish_manifest_list  # noqa: PLC0415
    from common.registry.auth import find_credentials  # noqa: PLC0415
    from common.registry.client import RegistryClient  # noqa: PLC0415
    from common.registry.reference import parse_reference  # noqa: PLC0415

    reference = parse_reference(image)
    credentials = find_credentials(reference.registry)
    digest = engine_push(docker.APIClient(), image, credentials)
    listed = publish_manifest_list(RegistryClient(reference.api_host, credentials, insecure=insecure), image, digest)
    print(f"{image}: pushed {digest}, manifest list {listed}")


def _register(image: str) -> None:
    _require_sdk("import --register")
    from common.backendai import register  # noqa: PLC0415

    print(register.register(image))


def _require_sdk(what: str) -> None:
    try:
        extras.require("bai", f"invoke impl.{what}")
    except extras.MissingExtraError as error:
        raise Exit(str(error), code=1) from None


@task(positional=["src", "dest"], help={
    "src": "the published image, host/repo:tag", "dest": "where the Backend.AI image goes, host/project/repo:tag",
    "impl": IMPL_HELP["impl"], "profile": "label profile (cuda; cpu without GPUs)",
    "as_index": "wrap a single-platform manifest in a one-entry list (Backend.AI before 24.09 needs a list)",
    "docker_format": "write Docker media types (Backend.AI 23.09 cannot read OCI ones)",
    "username": "login for the destination registry; the password comes from stdin",
    "password_stdin": "read the destination's password from stdin", "insecure": "plain HTTP to the source",
    "dest_insecure": "plain HTTP to the destination", "ca_bundle": "PEM file of CAs for the registries' TLS",
    "benchmark": IMPL_HELP["benchmark"]})
def convert(c, src, dest, impl, profile="cuda", as_index=False, docker_format=False, username=None,
            password_stdin=False, insecure=False, dest_insecure=False, ca_bundle=None, benchmark=None):
    """A published image of the implementation, made a Backend.AI image in the registry: labels rewritten and
    the launcher added as one layer, without Docker (layers are mounted or streamed, never stored)."""
    from common.labels.rules import LabelValidationError  # noqa: PLC0415
    from common.registry.errors import RegistryError  # noqa: PLC0415
    from implementations import convert as impl_convert  # noqa: PLC0415

    implementation = _read("convert", impl, benchmark)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        digest = impl_convert.convert(implementation, src, dest, profile=profile, as_index=as_index,
                                      docker_types=docker_format, username=username, password=password,
                                      insecure=insecure, dest_insecure=dest_insecure, ca_bundle=ca_bundle,
                                      log=lambda line: print(line, file=sys.stderr))
    except (RegistryError, LabelValidationError, ValueError) as error:
        raise Exit(f"impl.convert: {error}", code=1) from error
    print(f"{dest.rsplit(':', 1)[0]}@{digest}")
    print("an image converted in the registry gets no SSH client: pull it and run `invoke impl.check` on it",
          file=sys.stderr)


@task(positional=["image"], help={"image": "a local image built by impl.import or pulled after impl.convert"})
def check(c, image):
    """The Backend.AI image contract of an implementation image, and the launcher in it; exit 1 on failures."""
    from implementations import image as impl_image  # noqa: PLC0415

    _report_contract(image, impl_image.check(image))


@task(help={"benchmark": f"whose data: {', '.join(DATASETS)}", **benchmark_tasks.PREPARE_HELP,
            "data_dir": "where the data goes here (default: <benchmark>.data_dir)",
            "mirror": "base URL of a mirror serving the original paths", "from_dir": "take the files from here",
            "jobs": "files handled at once"}, auto_shortflags=False)
def prepare(c, benchmark, data_dir=None, mirror=None, from_dir=None, jobs=4, on_cluster=False, upload=None,
            vfolder=None, image=None, cpus=2, mem="8g", timeout=6 * 3600):
    """Download and verify an implementation's data the way its reference documents it: here, inside a batch
    session straight into a virtual folder (--on-cluster), or from here into one (--upload DIR)."""
    if benchmark not in DATASETS:
        raise Exit(f"impl.prepare: no dataset recipe for {benchmark!r} (the project has: {', '.join(DATASETS)})",
                   code=2)
    DATASETS[benchmark].tasks["prepare"](c, data_dir=data_dir, mirror=mirror, from_dir=from_dir, jobs=jobs,
                                         on_cluster=on_cluster, upload=upload, vfolder=vfolder, image=image,
                                         cpus=cpus, mem=mem, timeout=timeout)


RUN_HELP = {
    "impl": IMPL_HELP["impl"], "config": "config_<SYSTEM>.sh of the implementation (or <SYSTEM>)",
    "nodes": "containers in the session (default: the config's DGXNNODES)",
    "gpus_per_node": "GPUs per container (default: the config's DGXNGPU; 0: a CPU run)",
    "vfolder": "virtual folder (or FOLDER/SUBDIR) that stands for the scripts' ${DATADIR}",
    "mount": "VAR=FOLDER[/SUBDIR]: a virtual folder for another host directory of the scripts (repeatable)",
    "env": "NAME=VALUE for every task, after the config (repeatable), e.g. BINDCMD= to skip a binding helper",
    "dry_run": "print the plan (every container, task, environment, mount) and hold no GPU",
    "json": "with --dry-run: the plan as JSON, every task's whole added environment",
    "image": "the implementation's image registered on the cluster (impl.import / impl.convert)",
    **{k: v for k, v in benchmark_tasks.RUN_HELP.items() if k in (
        "on_cluster", "results_vfolder", "cluster_mode", "gpu_slot", "cpus_per_node", "mem_per_node", "shmem",
        "timeout", "start_timeout")},
    "runs": "seeded runs, one session each", "seed": "seed of the first run (default: random)",
    "system": "system name in the results layout (default: from what the session got, e.g. bai-1x8xB200)",
    "results_dir": "root of the results layout here", "benchmark": IMPL_HELP["benchmark"],
}


@task(iterable=["mount", "env"], help=RUN_HELP, auto_shortflags=False)
def run(c, impl, config, nodes=None, gpus_per_node=None, vfolder=None, mount=None, env=None, dry_run=False,
        json=False, on_cluster=False, image=None, results_vfolder="mlperf-results", cluster_mode="single-node",
        gpu_slot="cuda.device", cpus_per_node=8, mem_per_node="32g", shmem=None, runs=1, seed=None, system=None,
        timeout=4 * 3600, start_timeout=600, results_dir="results", benchmark=None):
    """Run an implementation in the world SLURM gives it, as Backend.AI cluster sessions (--on-cluster), or
    print that plan first (--dry-run); logs come home into results/<system>/<benchmark>/, scored."""
    implementation = _read("run", impl, benchmark)
    options = {"gpus_per_node": None if gpus_per_node is None else int(gpus_per_node), "data_vfolder": vfolder,
               "mounts": _assignments(mount, "--mount"), "env": _assignments(env, "--env", empty=True)}
    try:
        the_plan = plan.make_plan(implementation, config, nodes=None if nodes is None else int(nodes),
                                  results_vfolder=results_vfolder, **options)
    except INPUT_ERRORS as error:
        raise Exit(f"impl.run: {error}", code=2) from error
    resources = NodeResources(cpu=int(cpus_per_node), mem=mem_per_node, gpus=the_plan.gpus_per_node,
                              gpu_slot=gpu_slot, shmem=shmem or benchmark_tasks.default_shmem(the_plan.gpus_per_node))
    if dry_run:
        print(plan.as_json(the_plan) if json else plan.render(
            the_plan, image=image, resources=", ".join(f"{k}={v}" for k, v in resources.slots().items()),
            seed=None if seed is None else int(seed)))
        return
    if not on_cluster:
        raise Exit("impl.run: give --on-cluster to run on the cluster of BACKEND_*, or --dry-run for the plan", code=2)
    if not image:
        raise Exit("impl.run: --on-cluster needs --image REGISTRY/PROJECT/NAME:TAG (impl.import or impl.convert)",
                   code=2)
    _require_sdk("run --on-cluster")
    from common.backendai import runs as cluster_runs  # noqa: PLC0415 - the SDK only for cluster work
    from common.backendai.errors import BackendAIError  # noqa: PLC0415
    from implementations import cluster  # noqa: PLC0415

    data = next((m.vfolder for m in the_plan.mounts if m.vfolder and m.vfolder != results_vfolder), results_vfolder)
    spec = cluster_runs.ClusterRun(
        benchmark=cluster.benchmark(implementation), image=image, data_vfolder=data, results_vfolder=results_vfolder,
        nodes=the_plan.world.nodes, cluster_mode=cluster_mode, resources=resources, runs=int(runs),
        seed=None if seed is None else int(seed), system=system, timeout=float(timeout),
        start_timeout=float(start_timeout), results_dir=Path(results_dir))
    request = cluster.ImplementationRun(implementation, config, options)
    try:
        code = cluster.run_series(request, spec, the_plan)
    except BackendAIError as error:
        raise Exit(f"impl.run: {error}", code=1) from error
    if code != 0:
        raise Exit(code=code if 0 < code < 256 else 1)


def _assignments(items: list[str] | None, what: str, *, empty: bool = False) -> dict[str, str]:
    try:
        found = parse_assignments(items or [], what)
    except ValueError as error:
        raise Exit(f"impl.run: {error}", code=2) from error
    if not empty and any(not value for value in found.values()):
        raise Exit(f"impl.run: {what} needs NAME=VALUE with a value", code=2)
    return found


ns = Collection("impl", inspect, check, convert, prepare, run)
ns.add_task(import_, name="import")
