"""Read an implementation folder: what it benchmarks, how it launches, its configs and its mounts.

Input is a folder in MLCommons' submission layout (`<org>/benchmarks/<benchmark>/implementations/<impl>/`
with a Dockerfile, run_and_time.sh and/or run.sub, config_<SYSTEM>.sh files, a README) or a reference folder
of mlcommons/training. Nothing in it is executed here except the configs, which bash sources the way their
users do (implementations.shell). What the project cannot map is named with its file and line.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from common.labels.dockerfile import DockerfileError, parse
from implementations import scripts, shell
from implementations.scripts import Finding, Launch, Line, Mount, UnmappableLaunchError

SUBMISSION = re.compile(r"(?:^|/)(?P<org>[^/]+)/benchmarks/(?P<benchmark>[^/]+)/implementations/(?P<impl>[^/]+)/?$")
# mlcommons/training folders of the benchmarks mlperf-logging knows (reference implementations).
REFERENCE_BENCHMARKS = {
    "small_llm_pretraining": "llama31_8b", "large_language_model_pretraining": "llama31_405b",
    "llama2_70b_lora": "llama2_70b_lora", "text_to_image": "flux1", "recommendation_v2": "dlrm_dcnv2",
    "small_llm_moe_pretraining": "gpt_oss_20b", "single_stage_detector": "retinanet",
    "graph_neural_network": "rgat", "object_detection": "maskrcnn", "rnn_translator": "gnmt",
    "image_classification": "resnet", "language_model": "bert", "stable_diffusion": "stable_diffusion",
}
ENTRY = "run_and_time.sh"
RUN_SUB = "run.sub"
DOCKER_RUNNER = "run_with_docker.sh"
MOUNTS_VAR = "_cont_mounts"
NODES_VARS = ("DGXNNODES", "NNODES", "NUM_NODES")
GPUS_VARS = ("DGXNGPU", "GPUS_PER_NODE", "NGPU")
BATCH_VARS = ("BATCHSIZE", "MINIBS", "BATCH_SIZE", "LOCAL_BATCH_SIZE", "GBS", "GLOBAL_BATCH_SIZE")
FRAMEWORKS = (("nemo", "NeMo (PyTorch)"), ("primus", "Primus (PyTorch)"), ("hugectr", "HugeCTR"), ("dgl", "DGL"),
              ("jax", "JAX"), ("maxtext", "JAX"), ("tensorflow", "TensorFlow"), ("mxnet", "MXNet"),
              ("paddle", "PaddlePaddle"), ("pytorch", "PyTorch"), ("torch", "PyTorch"))
# Commands that launch training in scripts the project cannot map (a launch from outside the cluster).
_FOREIGN_LAUNCH = re.compile(r"\b(sbatch|nemo_run|run\.Experiment|mpirun|torchrun|srun|python3?)\b")


class NotAnImplementationError(ValueError):
    """The folder lacks what an implementation has; the message says what is missing."""


class UnknownConfigError(ValueError):
    """A config the implementation does not have."""


@dataclass(frozen=True)
class Config:
    """One config_<SYSTEM>.sh as bash sources it: its shape and everything it exports."""

    name: str
    path: Path
    sourced: shell.Sourced
    nodes: int | None
    gpus_per_node: int | None
    batch: tuple[str, str] | None

    @property
    def exports(self) -> dict[str, str]:
        return self.sourced.exports

    def shape(self) -> str:
        batch = f" x batch {self.batch[1]} ({self.batch[0]})" if self.batch else ""
        return f"{self.nodes or '?'} node(s) x {self.gpus_per_node or '?'} GPU(s){batch}"


@dataclass(frozen=True)
class Implementation:
    root: Path
    org: str | None
    benchmark: str
    name: str
    framework: str
    dockerfile: Path
    launch: Launch
    launch_script: Path | None
    config_names: tuple[str, ...]
    workdir: str
    mount_script: Path | None
    mount_lines: tuple[Line, ...]
    static_mounts: tuple[Mount, ...]
    findings: tuple[Finding, ...]
    task_findings: tuple[Finding, ...]
    unexported: tuple[str, ...]
    ruleset: str
    ruleset_source: str
    notes: tuple[str, ...] = field(default=())

    @property
    def title(self) -> str:
        return f"{self.org or 'reference'}/{self.benchmark}/{self.name}"

    @cached_property
    def launch_defaults(self) -> str:
        return scripts.defaults(self.launch_script) if self.launch_script else ""

    def config_path(self, name: str) -> Path:
        wanted = name if name.endswith(".sh") else f"config_{name}.sh"
        wanted = Path(wanted).name
        if wanted not in self.config_names:
            raise UnknownConfigError(f"{self.title} has no config {name} (it has: {', '.join(self.config_names)})")
        return self.root / wanted

    def config(self, name: str) -> Config:
        path = self.config_path(name)
        sourced = shell.source_config(path)
        shape = {**self.launch_values(sourced.exports), **sourced.exports}
        return Config(path.name, path, sourced, _first_int(shape, NODES_VARS), _first_int(shape, GPUS_VARS),
                      _first(shape, BATCH_VARS))

    def launch_values(self, exports: dict[str, str]) -> dict[str, str]:
        """What the launch script assumes when a config leaves it unset (run.sub's `: "${DGXNGPU:=8}"`)."""
        if not self.launch_defaults:
            return {}
        names = [*NODES_VARS, *GPUS_VARS, *([self.launch.tasks_var] if self.launch.tasks_var else [])]
        with tempfile.TemporaryDirectory(prefix="mlperf-defaults-") as scratch:
            values = shell.evaluate(self.launch_defaults, {**shell.CLEAN_ENV, **exports}, names, cwd=Path(scratch))
        return {name: value for name, value in values.items() if value}

    def tasks_per_node(self, config: Config) -> int:
        """srun's --ntasks-per-node for this config: its GPUs per node, a fixed count, or one per node."""
        if self.launch.tasks_var:
            value = {**self.launch_values(config.exports), **config.exports}.get(self.launch.tasks_var, "")
            if not value.isdigit() or int(value) < 1:
                where = self.launch.line.where if self.launch.line else self.launch.entry
                raise UnmappableLaunchError(f"{where}: tasks per node come from ${{{self.launch.tasks_var}}}, which "
                                            f"{config.name} does not set to a number ({value!r})")
            return int(value)
        return self.launch.fixed_tasks or 1


def _first(environ: dict[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    return next(((name, environ[name]) for name in names if environ.get(name)), None)


def _first_int(environ: dict[str, str], names: tuple[str, ...]) -> int | None:
    found = _first(environ, names)
    return int(found[1]) if found and found[1].isdigit() else None


def _known_benchmark(name: str, where: str) -> str:
    from common.results import rulesets  # noqa: PLC0415 - mlperf-logging only when an implementation is read

    if not rulesets.rulesets_for(name):
        raise NotAnImplementationError(f"{where}: benchmark {name!r} is not one mlperf-logging knows "
                                       "(give --benchmark NAME, e.g. llama31_8b)")
    return name


def identify(root: Path, benchmark: str | None) -> tuple[str | None, str, str]:
    """(org, benchmark, implementation name) from the submission layout or a reference folder's name."""
    match = SUBMISSION.search(root.as_posix())
    if match:
        return match["org"], benchmark or match["benchmark"], match["impl"]
    for part in (root.name, root.parent.name):
        if part in REFERENCE_BENCHMARKS:
            return None, benchmark or REFERENCE_BENCHMARKS[part], root.name
    if benchmark:
        return None, benchmark, root.name
    raise NotAnImplementationError(
        f"{root}: not in the submission layout <org>/benchmarks/<benchmark>/implementations/<impl>/ and not a "
        f"mlcommons/training reference folder ({', '.join(sorted(REFERENCE_BENCHMARKS))}); give --benchmark NAME")


def find_dockerfile(root: Path, chosen: str | None) -> Path | None:
    if chosen:
        path = root / chosen
        if not path.is_file():
            raise NotAnImplementationError(f"{root}: no Dockerfile {chosen}")
        return path
    candidates = sorted(p for p in root.glob("Dockerfile*") if p.is_file())
    return next((p for p in candidates if p.name == "Dockerfile"), candidates[0] if candidates else None)


def config_names(root: Path) -> list[str]:
    """config_*.sh files that are configs of a system: not sourced by another config, not the mount list."""
    candidates = sorted(p for p in root.glob("config_*.sh") if p.is_file())
    shared = {path.name for candidate in candidates for path in scripts.sources(candidate, root)}
    return [p.name for p in candidates if p.name not in shared and not p.name.startswith("config_mounts")]


def final_workdir(dockerfile: Path) -> str:
    """The working directory the Dockerfile's final stage leaves (where `./run_and_time.sh` is found)."""
    try:
        doc = parse(dockerfile.read_text())
    except (DockerfileError, OSError, UnicodeDecodeError):
        return "/"
    workdir = "/"
    for instruction in doc.final_stage():
        if instruction.keyword == "WORKDIR":
            value = doc.args_text(instruction).strip()
            workdir = value if value.startswith("/") else f"{workdir.rstrip('/')}/{value}"
    return workdir


def framework_of(name: str, dockerfile: Path) -> str:
    text = f"{name} {dockerfile.read_text(errors='replace')}".lower()
    return next((label for key, label in FRAMEWORKS if key in text), "unknown")


def _launch(root: Path) -> tuple[Launch, Path | None]:
    run_sub = root / RUN_SUB
    if run_sub.is_file() and (launch := scripts.srun_launch(run_sub, root)):
        return launch, run_sub
    runner = root / DOCKER_RUNNER
    if runner.is_file() and (launch := scripts.docker_launch(runner, root)):
        return launch, runner
    entry = root / ENTRY
    if entry.is_file():
        own_workers = re.search(r"\b(torchrun|torch\.distributed\.(run|launch)|mpirun)\b", entry.read_text())
        return Launch(entry=f"./{ENTRY}", arguments=(), wrapper=(), per_gpu=not own_workers,
                      tasks_var=None if own_workers else "DGXNGPU", fixed_tasks=1 if own_workers else None,
                      workdir=None, mounts_expr=None, line=None), None
    for script in sorted(root.glob("*.sh")):
        for line in scripts.logical_lines(script):
            if _FOREIGN_LAUNCH.search(line.text):
                raise UnmappableLaunchError(
                    f"{line.where}: `{line.text[:160]}`: the project maps a run.sub srun line, a "
                    f"run_with_docker.sh docker exec or a {ENTRY}, and this folder launches with none of them")
    raise NotAnImplementationError(f"{root}: no {ENTRY}, {RUN_SUB} or {DOCKER_RUNNER} (the per-task entry and "
                                   "how it is launched)")


def _ruleset(benchmark: str, launch_script: Path | None) -> tuple[str, str]:
    from common.results import rulesets  # noqa: PLC0415

    known = rulesets.rulesets_for(benchmark)
    if launch_script:
        found = re.search(r'MLPERF_RULESET:?=\s*"?([0-9.]+)', launch_script.read_text(errors="replace"))
        if found and found.group(1) in known:
            return found.group(1), f"{launch_script.name} (MLPERF_RULESET)"
        if found:
            named = rulesets.version(found.group(1))
            later = next((r for r in known if rulesets.version(r) >= named), known[-1])
            return later, (f"{launch_script.name} names {found.group(1)}, which has no {benchmark} rules; the first "
                           "round with it from there on")
    return known[-1], f"the last round with {benchmark} in mlperf-logging"


def read_implementation(root: Path, *, benchmark: str | None = None, dockerfile: str | None = None) -> Implementation:
    """Everything the project needs of an implementation folder, or an error naming what is missing."""
    root = root.resolve()
    if not root.is_dir():
        raise NotAnImplementationError(f"{root}: not a directory")
    org, bench, name = identify(root, benchmark)
    bench = _known_benchmark(bench, str(root))
    docker = find_dockerfile(root, dockerfile)
    configs = config_names(root)
    missing = ([] if docker else ["Dockerfile"]) + ([] if configs else ["config_<SYSTEM>.sh files"])
    has_entry = any((root / n).is_file() for n in (ENTRY, RUN_SUB, DOCKER_RUNNER))
    if missing and not has_entry:
        missing.append(f"{ENTRY} or {RUN_SUB}")
    if missing:
        raise NotAnImplementationError(f"{root} is not an MLPerf implementation: it has no {', no '.join(missing)}")
    launch, launch_script = _launch(root)
    assert docker is not None
    mount_lines: list[Line] = []
    mount_script = None
    launchers = [p for p in (root / RUN_SUB, root / DOCKER_RUNNER) if p.is_file()]
    for script in launchers if launch_script is None else [launch_script]:
        mount_lines += scripts.assignments(script, MOUNTS_VAR)
        for sourced in scripts.sources(script, root):
            if scripts.assignments(sourced, MOUNTS_VAR):
                mount_script = sourced
    static = scripts.static_mounts(mount_lines + (scripts.logical_lines(mount_script) if mount_script else []))
    entry_path = root / launch.entry.rsplit("/", 1)[-1]
    ruleset, ruleset_source = _ruleset(bench, launch_script)
    notes = []
    if launch.wrapper and launch.wrapper[0] not in ("bash", "sh"):
        where = launch.line.where if launch.line else launch.entry
        notes.append(f"the entry runs through {' '.join(launch.wrapper)} as in {where}; every task also gets the "
                     "variables it would derive")
    return Implementation(
        root=root, org=org, benchmark=bench, name=name, framework=framework_of(name, docker), dockerfile=docker,
        launch=launch, launch_script=launch_script, config_names=tuple(configs),
        workdir=final_workdir(docker), mount_script=mount_script, mount_lines=tuple(mount_lines),
        static_mounts=tuple(static), findings=tuple(scripts.host_findings(launchers)),
        task_findings=tuple(scripts.task_findings([entry_path, *(root / c for c in configs),
                                                   *root.glob("config_common*.sh")])),
        unexported=tuple(n for n in (scripts.exported_by(launch_script) if launch_script else [])
                         if n not in ("SEED", "MASTER_ADDR", "MASTER_PORT") and not n.startswith("SLURM")),
        ruleset=ruleset, ruleset_source=ruleset_source, notes=tuple(notes))


def describe(impl: Implementation, configs: list[Config]) -> str:
    """What was read, for people: the import's report."""
    lines = [f"{impl.title}: benchmark {impl.benchmark}, framework {impl.framework}, ruleset {impl.ruleset} "
             f"({impl.ruleset_source})",
             f"  Dockerfile: {impl.dockerfile.name}; working directory {impl.workdir}",
             f"  launch: {_launch_text(impl.launch)}"]
    lines.append("  configs:")
    for config in configs:
        chain = " <- ".join(Path(p).name for p in config.sourced.sourced[1:])
        lines.append(f"    {config.name}: {config.shape()}" + (f" (sources {chain})" if chain else ""))
    lines.append("  mounts it expects (container path <- host side, as its scripts write them):")
    lines += [f"    {m.container_path} <- {m.host}{' (ro)' if m.read_only else ''}  [{m.where}]"
              for m in impl.static_mounts] or ["    none found"]
    lines.append("  what the SLURM host does around the tasks, and what a Backend.AI run does:")
    found = [f"    {f.where}: {f.what}: {f.handling}" for f in (*impl.findings, *impl.task_findings)]
    lines += found or ["    nothing"]
    if impl.unexported and impl.launch_script:
        lines.append(f"  not given to the tasks: {', '.join(impl.unexported)} ({impl.launch_script.name} exports them "
                     "for itself; give one with --env NAME=VALUE)")
    lines += [f"  note: {note}" for note in impl.notes]
    return "\n".join(lines)


def _launch_text(launch: Launch) -> str:
    where = f" ({launch.line.where})" if launch.line else ""
    command = " ".join((*launch.wrapper, launch.entry, *launch.arguments))
    if launch.tasks_var:
        return f"one task per GPU (${{{launch.tasks_var}}} per node) running `{command}`{where}"
    return f"{launch.fixed_tasks or 1} task(s) per node running `{command}`{where}"
