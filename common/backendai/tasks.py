"""Invoke collection `bai`: a local Backend.AI sandbox, image registration, batch runs on any cluster.

Defaults live in invoke.yaml under `bai:` (sandbox_root, port_base, registry).
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

from invoke import Collection, Exit, task

from common import extras
from common.backendai.errors import BackendAIError, BatchInterruptedError
from common.backendai.sandbox.layout import DEFAULT_PORT_BASE, SandboxLayout, SandboxOptions, SandboxPorts
from common.backendai.sandbox.lines import DEFAULT_LINE, LINES, line_of
from common.backendai.sandbox.processes import SandboxError
from common.labels.rules import parse_assignments
from common.registry.errors import RegistryError

SANDBOX_HELP = {"root": "sandbox folder (default: bai.sandbox_root/VERSION)",
                "port_base": "ports are this base + fixed offsets (default: bai.port_base + the line's offset: "
                             "23.09 +0, 26.9 +2000, 26.4 +4000)",
                "version": f"Backend.AI line: {', '.join(LINES)} (default: bai.version)"}
TASK_ERRORS = (BackendAIError, SandboxError, RegistryError, ValueError, OSError)


def _layout(c, root: str | None, port_base: int | None, version: str | None) -> SandboxLayout:
    settings = c.config.get("bai", {})
    line = line_of(str(version or settings.get("version", DEFAULT_LINE)))
    folder = Path(root or Path(settings.get("sandbox_root", ".sandbox")) / line.name).resolve()
    base = int(port_base or int(settings.get("port_base", DEFAULT_PORT_BASE)) + line.port_offset)
    return SandboxLayout(folder, SandboxPorts(base), line)


def _fail(name: str, error: Exception) -> Exit:
    return Exit(f"bai.{name}: {error}", code=1)


def _require_sandbox(name: str) -> None:
    """The sandbox tasks need the `bai` extra (psutil); talking to a cluster needs none."""
    try:
        extras.require("bai", f"invoke bai.{name}")
    except extras.MissingExtraError as exc:
        raise Exit(str(exc), code=1) from None


@task(iterable=["registry", "project"],
      help={**SANDBOX_HELP, "registry": "registry host:port the sandbox may pull from (repeatable; default: "
                                        "bai.registry)",
            "project": "26.x: a registry project the manager scans, images <registry>/<project>/... "
                       "(repeatable; default: bai.projects)",
            "agents": "2: a second agent (26.x) over a single-node Docker swarm, for multi-node sessions",
            "log_cap": "what an agent keeps of a container's log, e.g. 256k (Backend.AI's default: 10M)"})
def sandbox_up(c, root=None, port_base=None, version=None, registry=None, project=None, agents=1, log_cap=None):
    """Bring up a Backend.AI on 127.0.0.1: one agent, or two for multi-node sessions (a second call finds it
    running)."""
    settings = c.config.get("bai", {})
    layout = _layout(c, root, port_base, version)
    registries = registry or [settings.get("registry", "127.0.0.1:5000")]
    projects = project or list(settings.get("projects", ["mlperf"]))
    start = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - start:6.1f}s] {message}", flush=True)

    _require_sandbox("sandbox-up")
    from common.backendai.sandbox import control  # noqa: PLC0415 - loaded only for bai tasks

    try:
        outcome = control.up(layout, registries, progress=progress, projects=projects,
                             options=SandboxOptions(agents=int(agents), log_cap=log_cap))
        print(f"sandbox {outcome} ({time.monotonic() - start:.1f}s)")
        print(control.format_status(control.status(layout)))
    except TASK_ERRORS as exc:
        raise _fail("sandbox-up", exc) from exc


@task(help=SANDBOX_HELP)
def sandbox_status(c, root=None, port_base=None, version=None):
    """Endpoint, services, the agent's state and resources, and how to export BACKEND_*."""
    _require_sandbox("sandbox-status")
    from common.backendai.sandbox import control  # noqa: PLC0415 - loaded only for bai tasks

    layout = _layout(c, root, port_base, version)
    try:
        report = control.status(layout)
    except TASK_ERRORS as exc:
        raise _fail("sandbox-status", exc) from exc
    print(control.format_status(report))
    if not all(report["services"].values()):
        raise Exit(code=3)


@task(help={**SANDBOX_HELP, "remove_data": "also delete database, etcd, folders, configs and keys",
            "purge": "delete the whole sandbox folder, its virtualenv included"})
def sandbox_down(c, root=None, port_base=None, version=None, remove_data=False, purge=False):
    """Stop what sandbox-up started (by recorded pid); keep the data unless asked."""
    _require_sandbox("sandbox-down")
    from common.backendai.sandbox import control  # noqa: PLC0415 - loaded only for bai tasks

    layout = _layout(c, root, port_base, version)
    try:
        stopped = control.down(layout, remove_data=remove_data, purge=purge)
    except TASK_ERRORS as exc:
        raise _fail("sandbox-down", exc) from exc
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}"
          f"{'; data removed' if remove_data or purge else f'; data kept in {layout.root}'}")


@task(positional=["image"], help={"image": "registry/repository:tag",
                                  "insecure": "plain HTTP to the registry (default: only for 127.0.0.1)"})
def register(c, image, insecure=None):
    """Make IMAGE known to the manager of BACKEND_ENDPOINT (admin keys; wraps it in a list where needed)."""
    from common.backendai import register as bai_register  # noqa: PLC0415 - loaded only for bai tasks

    try:
        record = bai_register.register(image, insecure=insecure)
    except TASK_ERRORS as exc:
        raise _fail("register", exc) from exc
    print(f"registered {record['registry']}/{record['name']}:{record['tag']} ({record['architecture']}, "
          f"{record['digest'].strip()}); {record['scan']}")


def parse_resources(text: str) -> dict[str, str]:
    """cpu=2,mem=4g,cuda.device=1 -> {"cpu": "2", ...}"""
    return parse_assignments([item for item in text.split(",") if item], "--resources")


def parse_mounts(items: list[str]) -> tuple[dict[str, str | None], set[str]]:
    """FOLDER[:PATH][:ro] -> (folder -> path, the read-only folders); without PATH Backend.AI mounts
    at /home/work/FOLDER."""
    mounts: dict[str, str | None] = {}
    read_only: set[str] = set()
    for item in items:
        name, _, rest = item.partition(":")
        path, _, mode = rest.partition(":")
        if path == "ro" and not mode:
            path, mode = "", "ro"
        if not name or mode not in ("", "ro", "rw"):
            raise ValueError(f"--mount {item!r}: expected FOLDER[:PATH][:ro]")
        mounts[name] = path or None
        if mode == "ro":
            read_only.add(name)
    return mounts, read_only


@task(positional=["image"], iterable=["mount", "env"],
      help={"image": "a registered image, registry/repository:tag", "command": "startup command (sh -c)",
            "resources": "cpu=N,mem=SIZE[,cuda.device=N]", "shmem": "shared memory, e.g. 1g",
            "mount": "FOLDER[:PATH][:ro] (repeatable; ro: read-only where the manager can, 24.03+)",
            "env": "K=V (repeatable)",
            "timeout": "seconds the command may run before the session is destroyed",
            "start_timeout": "seconds the scheduler may keep the session waiting before it is given up",
            "output": "a writable folder (mounted if not already) that gets the output as <session>/output.txt, "
                      "read from there while it runs: for long output (the agent keeps only the end of a log)",
            "resource_group": "resource group (scaling group) to run in (default: one the project may use)",
            "nodes": "containers in the session (a cluster session; the command runs in main1)",
            "cluster_mode": "single-node (all containers on one agent) or multi-node (across agents)",
            "name": "session name (4-64 chars)"})
def run(c, image, command, resources="cpu=1,mem=2g", shmem=None, mount=None, env=None, timeout=3600,
        start_timeout=600, output=None, resource_group=None, nodes=1, cluster_mode="single-node", name=None):
    """Run one batch session on the cluster of BACKEND_*; print its output; exit with its exit code."""
    from common.backendai import client as bai_client  # noqa: PLC0415 - loaded only for bai tasks

    try:
        mounts, read_only = parse_mounts(mount or [])
        if output in read_only:
            raise ValueError(f"--output {output}: that folder is mounted read-only")
        name = name or f"batch-{uuid.uuid4().hex[:12]}"
        if output:
            mounts.setdefault(output, None)
            bai_client.ensure_vfolder(output)
        job = bai_client.BatchJob(image=image, command=command, resources=parse_resources(resources),
                                  shmem=shmem, env=parse_assignments(env or [], "--env"), mounts=mounts,
                                  read_only=read_only, name=name, timeout=float(timeout),
                                  start_timeout=float(start_timeout), resource_group=resource_group,
                                  cluster_size=int(nodes), cluster_mode=cluster_mode,
                                  output_file=(output, f"{name}/output.txt") if output else None)
        result = bai_client.run_batch(job, on_event=lambda e: print(f"[{e}]", file=sys.stderr, flush=True),
                                      on_output=lambda line: print(line, flush=True))
    except BatchInterruptedError as exc:
        raise Exit(f"bai.run: {exc}", code=130) from exc
    except TASK_ERRORS as exc:
        raise _fail("run", exc) from exc
    print(f"session {result.name} ({result.session_id}): {result.status}, exit code {result.exit_code}",
          file=sys.stderr)
    if result.exit_code != 0:
        # A shell exit status is 0-255; Backend.AI also reports negative codes (-2: batch timeout).
        raise Exit(code=result.exit_code if 0 < result.exit_code < 256 else 1)


ns = Collection(sandbox_up, sandbox_status, sandbox_down, register, run)
ns.configure({"bai": {"sandbox_root": ".sandbox", "port_base": DEFAULT_PORT_BASE, "version": DEFAULT_LINE,
                      "registry": "127.0.0.1:5000", "projects": ["mlperf"]}})
