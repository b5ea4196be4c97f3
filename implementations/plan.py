"""A run's plan: which containers, which tasks with which environment, which mounts, before any GPU is held.

The plan is computed from the implementation's own files (the config sourced by bash, the mount list its
scripts build) and the cluster shape asked for; `impl.run --dry-run` prints it, and a real run hands the same
plan to the image's launcher (implementations.slurm_world). Everything a run cannot do is refused here, with a
one-line reason: a config it does not have, more GPUs per node than the session gets, a mount no virtual folder
provides, a launch it cannot map.
"""

from __future__ import annotations

import json
import posixpath
import re
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from implementations import scripts, shell, world
from implementations.importer import MOUNTS_VAR, Config, Implementation

# Where Backend.AI mounts a virtual folder in every container of a session (the default mount path).
KERNEL_HOME = "/home/work"
# Where the image keeps the implementation folder and the project's launcher (implementations.image).
IMPL_IN_IMAGE = "/opt/mlperf-impl"
LAUNCHER_IN_IMAGE = "/opt/mlperf-bai"
RESULTS_VAR = "LOGDIR"
DATA_VAR = "DATADIR"
MASTER_PORT = 29500
# The implementation's own /results inside the run's folder of the results virtual folder.
IMPL_RESULTS = "results"
_PLACEHOLDER = re.compile(r"^@(?P<var>[A-Za-z_]\w*)@(?P<rest>.*)$")


class PlanError(ValueError):
    """The run cannot be planned; refused before any session is created."""


@dataclass(frozen=True)
class Binding:
    """A host directory variable of the scripts (DATADIR, LOGDIR, ...) given by a virtual folder."""

    vfolder: str
    subpath: str = ""

    @classmethod
    def parse(cls, text: str) -> Binding:
        name, _, sub = text.strip("/").partition("/")
        if not name or ".." in sub.split("/"):
            raise PlanError(f"--mount ...={text}: expected VFOLDER or VFOLDER/SUBDIR inside it")
        return cls(name, sub.strip("/"))


@dataclass(frozen=True)
class PlannedMount:
    """A container path of the implementation and what it points at in the session's containers."""

    container_path: str
    target: str
    vfolder: str | None
    read_only: bool
    origin: str


@dataclass(frozen=True)
class RunPlan:
    impl: Implementation
    config: Config
    world: world.World
    gpus_per_node: int
    command: tuple[str, ...]
    workdir: str
    mounts: tuple[PlannedMount, ...]
    env: dict[str, str]
    results_vfolder: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def session(self) -> str:
        return self.world.job_name

    @property
    def results_dir(self) -> str:
        """The run's folder inside the session (its log, the implementation's /results)."""
        return f"{KERNEL_HOME}/{self.results_vfolder}/{self.session}"

    def vfolders(self) -> dict[str, bool]:
        """Each virtual folder the session mounts, and whether read-only (only when every use is)."""
        folders: dict[str, bool] = {self.results_vfolder: False}
        for mount in self.mounts:
            if mount.vfolder is not None:
                folders[mount.vfolder] = folders.get(mount.vfolder, True) and mount.read_only
        return folders

    def task_env(self, task: world.Task) -> dict[str, str]:
        """What a task sees on top of its container's environment: the config, --env, then SLURM's world."""
        return {**self.config.exports, **self.env, **task.env}

    def links(self) -> str:
        """`container path=target` pairs for the image's bootstrap, which links them as root."""
        return ";".join(f"{m.container_path}={m.target}" for m in self.mounts)

    def spec(self, *, seed: int, system: str) -> dict[str, Any]:
        """What the image's launcher needs (JSON in the session's environment)."""
        return {
            "config": f"{IMPL_IN_IMAGE}/{self.config.name}", "command": list(self.command), "workdir": self.workdir,
            "tasks_per_node": self.world.tasks_per_node, "master_port": self.world.master_port,
            "job_id": self.world.job_id, "job_name": self.session, "seed": seed, "env": self.env,
            "evict": sorted({m.target for m in self.mounts if m.vfolder and m.vfolder != self.results_vfolder}),
            "mkdirs": sorted({m.target for m in self.mounts if m.vfolder and not m.read_only}),
            "links": [[m.container_path, m.target] for m in self.mounts],
            "results": self.results_dir, "benchmark": self.impl.benchmark, "system": system,
            "not_done": [f"{f.what} ({f.where}): {f.handling}" for f in self.impl.findings],
        }


def job_id(session: str) -> str:
    """SLURM's job ids are numbers (scripts compute with them); the session's name gives one."""
    return str(zlib.crc32(session.encode()) % 10_000_000)


def _vfolder_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise PlanError(f"{name!r} is not a virtual folder name")
    return name


def bindings(data_vfolder: str | None, results_vfolder: str, session: str,
             mounts: Mapping[str, str]) -> dict[str, Binding]:
    """DATADIR from --vfolder, LOGDIR from the results folder (this run's own subfolder), --mount VAR=... on top."""
    bound = {RESULTS_VAR: Binding(_vfolder_name(results_vfolder), f"{session}/{IMPL_RESULTS}")}
    if data_vfolder:
        bound[DATA_VAR] = Binding.parse(data_vfolder)
    for var, text in mounts.items():
        if not re.fullmatch(r"[A-Za-z_]\w*", var):
            raise PlanError(f"--mount {var}={text}: {var!r} is not a shell variable name")
        bound[var] = Binding.parse(text)
    for binding in bound.values():
        _vfolder_name(binding.vfolder)
    return bound


def evaluated_mounts(impl: Implementation, config: Config, bound: Mapping[str, Binding],
                     session: str, scratch: Path) -> list[tuple[str, str, bool]]:
    """The mount list the scripts build for this config, with `@VAR@` where a bound variable stands."""
    env = {**shell.CLEAN_ENV, **config.exports, **{var: f"@{var}@" for var in bound}, "DATESTAMP": session}
    snippet = "\n".join([impl.launch_defaults,
                         f'source "{impl.mount_script}"' if impl.mount_script else "",
                         *(line.text for line in impl.mount_lines)])
    value = shell.evaluate(snippet, env, [MOUNTS_VAR], cwd=scratch)[MOUNTS_VAR]
    return scripts.parse_mounts(value)


def _root_variable(impl: Implementation, config: Config, name: str, seen: frozenset[str] = frozenset()) -> str:
    """The host directory variable a mount's variable comes from (TOKENIZER="${DATADIR}/8b/tokenizer": DATADIR)."""
    sources = [s for s in (impl.mount_script, impl.launch_script) if s]
    assigning = re.compile(rf"^(?:export\s+)?{re.escape(name)}\+?=(?P<value>.*)$")
    for line in (line for script in sources for line in scripts.logical_lines(script)):
        match = assigning.match(line.text)
        for found in re.findall(r"\$\{?([A-Za-z_]\w*)", match["value"]) if match else []:
            if found not in config.exports and found not in seen and found != name:
                return _root_variable(impl, config, found, seen | {name})
    return name


def _unbound(impl: Implementation, config: Config, path: str, host: str) -> PlanError:
    written = next((m for m in impl.static_mounts if m.container_path.rstrip("/") == path), None)
    names = re.findall(r"\$\{?([A-Za-z_]\w*)", written.host) if written else []
    where = f" ({written.where}: {written.host}:{path})" if written else ""
    if names:
        root = _root_variable(impl, config, names[0])
        option = "--vfolder VFOLDER[/SUBDIR]" if root == DATA_VAR else f"--mount {root}=VFOLDER[/SUBDIR]"
        return PlanError(f"mount {path} needs ${{{root}}}{where}, which no virtual folder provides: give {option}")
    return PlanError(f"mount {path} comes from host path {host!r}{where}, which no virtual folder provides")


def plan_mounts(impl: Implementation, config: Config, bound: Mapping[str, Binding], session: str) -> list[PlannedMount]:
    with tempfile.TemporaryDirectory(prefix="mlperf-mounts-") as scratch:
        entries = evaluated_mounts(impl, config, bound, session, Path(scratch))
        planned = []
        for host, path, read_only in entries:
            origin = next((f"{m.host} [{m.where}]" for m in impl.static_mounts
                           if m.container_path.rstrip("/") == path), host)
            match = _PLACEHOLDER.match(host)
            if match and match["var"] in bound:
                rest = match["rest"].strip("/")
                if "@" in rest or ".." in rest.split("/"):
                    raise PlanError(f"mount {path}: host side {host} ({origin}) is not a folder inside "
                                    f"${{{match['var']}}}")
                binding = bound[match["var"]]
                sub = posixpath.normpath(posixpath.join(binding.subpath, rest)) if binding.subpath or rest else ""
                target = posixpath.join(KERNEL_HOME, binding.vfolder, sub) if sub not in ("", ".") \
                    else f"{KERNEL_HOME}/{binding.vfolder}"
                planned.append(PlannedMount(path, target, binding.vfolder, read_only, origin))
            elif host == scratch or host.startswith(scratch + "/"):
                relative = posixpath.normpath(posixpath.relpath(host, scratch))
                if relative.startswith(".."):
                    raise PlanError(f"mount {path} takes {origin}, outside the implementation folder, which the "
                                    "image does not have")
                target = IMPL_IN_IMAGE if relative == "." else f"{IMPL_IN_IMAGE}/{relative}"
                planned.append(PlannedMount(path, target, None, True, origin))
            else:
                raise _unbound(impl, config, path, host)
    return planned


def _workdir(impl: Implementation, config: Config) -> str:
    if not impl.launch.workdir:
        return impl.workdir
    with tempfile.TemporaryDirectory(prefix="mlperf-workdir-") as scratch:
        value = shell.evaluate(f'{impl.launch_defaults}\n__workdir="{impl.launch.workdir}"',
                               {**shell.CLEAN_ENV, **config.exports}, ["__workdir"], cwd=Path(scratch))["__workdir"]
    if not value.startswith("/"):
        where = impl.launch.line.where if impl.launch.line else "the launch"
        raise PlanError(f"{where}: --container-workdir={impl.launch.workdir} is {value!r}, not an absolute path")
    return value


def make_plan(impl: Implementation, config_name: str, *, nodes: int | None = None, gpus_per_node: int | None = None,
              data_vfolder: str | None = None, results_vfolder: str = "mlperf-results",
              mounts: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None,
              session: str = "SESSION", master_port: int = MASTER_PORT) -> RunPlan:
    """The run of `config_name` on `nodes` containers of `gpus_per_node` GPUs (default: the config's shape)."""
    config = impl.config(config_name)
    tasks = impl.tasks_per_node(config)
    needed = config.gpus_per_node or (tasks if impl.launch.per_gpu else 0)
    gpus = needed if gpus_per_node is None else gpus_per_node
    if gpus < 0:
        raise PlanError(f"--gpus-per-node must be 0 (a CPU run) or more, not {gpus}")
    if 0 < gpus < needed:
        what = f"{impl.launch.tasks_var}={needed}" if impl.launch.tasks_var else f"{needed} GPUs"
        raise PlanError(f"{config.name} asks for {needed} GPU(s) per node ({what}), but the session has {gpus} per "
                        f"container (--gpus-per-node {gpus}); pick a config for {gpus} GPU(s) per node")
    warnings = []
    count = nodes or config.nodes or 1
    if nodes is not None and nodes < 1:
        raise PlanError(f"--nodes must be at least 1, not {nodes}")
    if config.nodes and count != config.nodes:
        warnings.append(f"{config.name} is for {config.nodes} node(s); on {count} the world has {count * tasks} "
                        f"task(s) instead of {config.nodes * tasks}")
    if gpus == 0 and needed:
        warnings.append(f"a CPU run: {tasks} task(s) per container on CPUs, no GPUs asked for")
    bound = bindings(data_vfolder, results_vfolder, session, mounts or {})
    planned = plan_mounts(impl, config, bound, session)
    workdir = _workdir(impl, config)
    overrides = dict(env or {})
    the_world = world.World(world.backendai_hosts(count), tasks, master_port, job_id(session), job_name=session,
                            submit_dir=workdir)
    command = (*impl.launch.wrapper, impl.launch.entry, *impl.launch.arguments)
    return RunPlan(impl, config, the_world, gpus, command, workdir, tuple(planned), overrides, results_vfolder,
                   tuple(warnings))


def _shared(plan: RunPlan, tasks: list[world.Task]) -> tuple[dict[str, str], list[str]]:
    """World variables every task has with the same value, and the names that differ per task."""
    envs = [task.env for task in tasks]
    shared = {k: v for k, v in envs[0].items() if all(e.get(k) == v for e in envs)}
    return shared, [k for k in envs[0] if k not in shared]


def render(plan: RunPlan, *, image: str | None = None, resources: str = "", seed: int | None = None) -> str:
    """The dry-run: every container, every task's environment and command, the mounts, what is not done."""
    impl, config, the_world = plan.impl, plan.config, plan.world
    tasks = world.all_tasks(the_world)
    shared, varying = _shared(plan, tasks)
    lines = [f"plan: {impl.title}, {config.name}: {config.shape()}; ruleset {impl.ruleset}",
             f"image: {image or '(give --image)'}",
             f"session: {the_world.nodes} container(s) ({', '.join(the_world.hosts)}), "
             f"{plan.gpus_per_node} GPU(s) each{', ' + resources if resources else ''}",
             f"world: {the_world.size} task(s), {the_world.tasks_per_node} per container, rendezvous at "
             f"{the_world.master_addr}:{the_world.master_port}; MLPerf log and rank 0 in {the_world.hosts[0]}",
             "mounts (in every container):"]
    lines += [f"  {m.container_path} -> {m.target}" + (f" (virtual folder {m.vfolder}" if m.vfolder else " (image")
              + (", read-only)" if m.read_only else ")") + f"  <- {m.origin}" for m in plan.mounts] or ["  none"]
    lines.append("environment of every task, on top of its container's (later groups win):")
    lines.append(f" {config.name}, sourced by bash in every container ({len(config.exports)} variable(s)):")
    lines += [f"  {name}={value}" for name, value in sorted(config.exports.items())]
    if plan.env:
        lines.append(" --env:")
        lines += [f"  {name}={value}" for name, value in sorted(plan.env.items())]
    lines.append(" srun's, the same in every task:")
    lines += [f"  {name}={value}" for name, value in sorted(shared.items())]
    lines.append(f"  SEED={seed if seed is not None else '(each run its own: --seed, then +1 per run)'}")
    lines.append(f"tasks (each runs `{' '.join(plan.command)}` in {plan.workdir}; per-task variables):")
    lines += [f"  task {t.rank}: {t.host} local {t.local}: " + " ".join(f"{k}={t.env[k]}" for k in varying)
              for t in tasks]
    lines += [f"not done by Backend.AI: {f.what} ({f.where}): {f.handling}" for f in impl.findings]
    lines += [f"inside the tasks: {f.what} ({f.where}): {f.handling}" for f in impl.task_findings]
    lines += [f"warning: {w}" for w in plan.warnings]
    return "\n".join(lines)


def as_json(plan: RunPlan) -> str:
    """The plan as data: every task with its complete added environment."""
    return json.dumps({
        "implementation": plan.impl.title, "benchmark": plan.impl.benchmark, "config": plan.config.name,
        "ruleset": plan.impl.ruleset, "nodes": plan.world.nodes, "tasks_per_node": plan.world.tasks_per_node,
        "gpus_per_node": plan.gpus_per_node, "command": list(plan.command), "workdir": plan.workdir,
        "mounts": [m.__dict__ for m in plan.mounts], "warnings": list(plan.warnings),
        "tasks": [{"rank": t.rank, "host": t.host, "local": t.local, "env": plan.task_env(t)}
                  for t in world.all_tasks(plan.world)],
    }, indent=1)
