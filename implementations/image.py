"""An implementation's image for Backend.AI: its own Dockerfile plus a final stage, built with the project's
image machinery, checked against the Backend.AI image contract, pushed and wrapped in a manifest list.

The final stage adds what the contract and a cluster run need and the implementation's image lacks: root as the
last user, an SSH client (the subs' tasks are started over SSH), the project's launcher in /opt/mlperf-bai (stdlib
only: the image's own Python runs it), the implementation folder in /opt/mlperf-impl (the configs the launcher
sources), /opt/container/bootstrap.sh (links the implementation's container paths to the session's folders), and
the Backend.AI labels (images/labels.yaml, validated). The same files make the one layer an image already
published gets in the registry (implementations.convert).
"""

from __future__ import annotations

import io
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from common.imagebuild import contract
from common.imagebuild import matrix as m
from common.imagebuild.build import stream_build
from common.labels.dockerfile import DockerfileError, inject_labels, parse
from common.labels.rules import RUNTIME_PATH, SERVICE_PORTS, resolve_labels, validate_labels
from implementations.importer import Implementation
from implementations.plan import IMPL_IN_IMAGE, LAUNCHER_IN_IMAGE
from implementations.slurm_world import BOOTSTRAP as BOOTSTRAP_IN_IMAGE

# The modules the launcher runs with in the image (stdlib only; a test imports them in isolation).
LAUNCHER_MODULES = (
    "common/__init__.py", "common/atomic.py", "common/mlperf/__init__.py", "common/mlperf/launcher.py",
    "common/mlperf/results.py", "common/results/__init__.py",
    "common/results/layout.py", "common/results/logs.py", "common/results/systems.py",
    "implementations/__init__.py", "implementations/shell.py", "implementations/world.py",
    "implementations/slurm_world.py",
)
BOOTSTRAP = Path(__file__).with_name("bootstrap.sh")
IMPLEMENTATION_LABEL = f"{m.LABEL_NS}.implementation"
STAGE_ALIAS = "mlperf-implementation"
CONTEXT_DIR = ".mlperf-bai"
# Nothing of a version-control checkout goes into the image.
SKIPPED = (".git", ".hg", ".svn", "__pycache__", CONTEXT_DIR)
FINAL_STAGE = f"""
# mlperf-backendai (implementations/image.py): the implementation as a Backend.AI image.
FROM @ALIAS@
USER root
RUN command -v ssh >/dev/null 2>&1 || {{ (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \\
        --no-install-recommends openssh-client && rm -rf /var/lib/apt/lists/*) || dnf install -y openssh-clients \\
        || yum install -y openssh-clients || apk add --no-cache openssh-client; }}
RUN python3 -c "import sys; assert sys.version_info >= (3, 10), 'the launcher needs 3.10+, not ' + sys.version" \\
    && {{ test -x /usr/bin/python3 || ln -s "$(command -v python3)" /usr/bin/python3; }}
COPY {CONTEXT_DIR}/launcher/ {LAUNCHER_IN_IMAGE}/
COPY {CONTEXT_DIR}/implementation/ {IMPL_IN_IMAGE}/
COPY {CONTEXT_DIR}/bootstrap.sh {BOOTSTRAP_IN_IMAGE}
"""


class ImplementationImageError(RuntimeError):
    """The implementation's Dockerfile cannot be given a final stage, or its build failed."""


@dataclass(frozen=True)
class LayerFile:
    path: str
    data: bytes
    mode: int


def launcher_files() -> list[LayerFile]:
    """The launcher and the bootstrap, at their paths in the image (relative to /)."""
    files = [LayerFile(f"{LAUNCHER_IN_IMAGE.lstrip('/')}/{module}", (m.ROOT / module).read_bytes(), 0o644)
             for module in LAUNCHER_MODULES]
    files.append(LayerFile(BOOTSTRAP_IN_IMAGE.lstrip("/"), BOOTSTRAP.read_bytes(), 0o755))
    return files


def implementation_files(impl: Implementation) -> list[LayerFile]:
    """The implementation folder, at /opt/mlperf-impl (its executable bits kept, its .dockerignore obeyed)."""
    from docker.utils.build import exclude_paths  # noqa: PLC0415 - docker-py's reading of .dockerignore

    ignore = impl.root / ".dockerignore"
    patterns = [p for p in ignore.read_text().splitlines() if p.strip() and not p.startswith("#")] \
        if ignore.is_file() else []
    excluded = exclude_paths(str(impl.root), patterns) if patterns else set()
    files = []
    for path in sorted(impl.root.rglob("*")):
        relative = path.relative_to(impl.root)
        if (path.is_file() and not path.is_symlink() and not set(relative.parts) & set(SKIPPED)
                and relative.as_posix() not in excluded):
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            files.append(LayerFile(f"{IMPL_IN_IMAGE.lstrip('/')}/{relative.as_posix()}", path.read_bytes(), mode))
    return files


def image_labels(impl: Implementation, profile: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Backend.AI labels of the profile, without service ports (the image serves none), and what it holds."""
    labels = resolve_labels(profile, {SERVICE_PORTS: "", RUNTIME_PATH: "/usr/bin/python3", **(extra or {})})
    validate_labels(labels).raise_for_errors(f"labels of {impl.title}")
    labels.update({m.BENCHMARK_LABEL: impl.benchmark, IMPLEMENTATION_LABEL: impl.title,
                   "org.opencontainers.image.title": f"{impl.title} for Backend.AI"})
    return labels


def with_final_stage(text: str, labels: Mapping[str, str]) -> tuple[str, list[str]]:
    """The Dockerfile with its last stage named and the project's stage after it, labels in that stage."""
    try:
        doc = parse(text)
        last_from = doc.final_stage()[0]
    except DockerfileError as error:
        raise ImplementationImageError(f"cannot add a final stage: {error}") from error
    words = doc.words(last_from)
    if len(words) >= 3 and words[-2].upper() == "AS":
        alias = words[-1]
    else:
        alias = STAGE_ALIAS
        end = last_from.start + len(text[last_from.start:last_from.end].rstrip("\r\n"))
        text = f"{text[:end]} AS {alias}{text[end:]}"
    if not text.endswith("\n"):
        text += "\n"
    result = inject_labels(text + FINAL_STAGE.replace("@ALIAS@", alias), dict(sorted(labels.items())))
    return result.text, result.warnings


def build_context(impl: Implementation, dockerfile_text: str) -> io.BufferedRandom:
    """The implementation folder with the project's files beside it (.mlperf-bai/), as a tar stream."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - returned open: the build reads it, then closes it
    with tarfile.open(fileobj=handle, mode="w") as tar:
        def add(name: str, data: bytes, mode: int) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for item in implementation_files(impl):
            relative = item.path[len(IMPL_IN_IMAGE.lstrip("/")) + 1:]
            add(relative, item.data, item.mode)
            add(f"{CONTEXT_DIR}/implementation/{relative}", item.data, item.mode)
        for item in launcher_files():
            name = "bootstrap.sh" if item.path == BOOTSTRAP_IN_IMAGE.lstrip("/") else \
                f"launcher/{item.path[len(LAUNCHER_IN_IMAGE.lstrip('/')) + 1:]}"
            add(f"{CONTEXT_DIR}/{name}", item.data, item.mode)
        add(f"{CONTEXT_DIR}/Dockerfile", dockerfile_text.encode(), 0o644)
    handle.seek(0)
    return handle


def build(impl: Implementation, reference: str, *, profile: str = "cuda", build_args: Mapping[str, str] | None = None,
          network_mode: str | None = None, nocache: bool = False, log: TextIO = sys.stdout) -> str:
    """Build the implementation's image for Backend.AI with the Docker engine; its image id."""
    import docker  # noqa: PLC0415 - the engine only for builds

    text, warnings = with_final_stage(impl.dockerfile.read_text(), image_labels(impl, profile))
    for warning in warnings:
        print(f"warning: {impl.dockerfile.name}: {warning}", file=log)
    with build_context(impl, text) as context:
        return stream_build(docker.APIClient(), log, f"{impl.title}: {impl.dockerfile.name} + Backend.AI stage",
                            fileobj=context, custom_context=True, dockerfile=f"{CONTEXT_DIR}/Dockerfile",
                            tag=reference, buildargs=dict(build_args or {}), network_mode=network_mode,
                            nocache=nocache)


LAUNCHER_PROBE = (f'cd {LAUNCHER_IN_IMAGE} && python3 -m implementations.slurm_world --help >/dev/null '
                  f'&& test -x {BOOTSTRAP_IN_IMAGE} && test -d {IMPL_IN_IMAGE} && echo launcher-ok')


def check(reference: str) -> contract.ContractReport:
    """The Backend.AI image contract for an implementation image, and the launcher it needs."""
    import docker  # noqa: PLC0415
    from docker.errors import DockerException, ImageNotFound  # noqa: PLC0415

    client = docker.from_env()
    report = contract.ContractReport(reference)
    try:
        config = client.images.get(reference).attrs["Config"]
    except ImageNotFound:
        report.add("exists", contract.FAIL, "no such local image; build it first")
        return report
    labels = config.get("Labels") or {}
    contract.check_config(report, labels, config.get("User") or "")
    runtime = labels.get(RUNTIME_PATH, "")
    try:
        probe = contract.parse_probe(contract.run_probe(client, reference, runtime, []))
        launched = client.containers.run(reference, entrypoint=["/bin/sh", "-c", LAUNCHER_PROBE], user="root",
                                         remove=True, network_mode="none", stdout=True, stderr=True)
    except DockerException as error:
        report.add("probe", contract.FAIL, f"the probe container failed: {error}")
        return report
    found = (probe.python or {}).get("python")
    contract.check_runtime(report, probe, runtime, labels.get(m.PYTHON_LABEL) or found)
    contract.check_system(report, probe)
    contract.check_services(report, probe, labels)
    if b"launcher-ok" in launched:
        report.add("launcher", contract.PASS, f"{LAUNCHER_IN_IMAGE} runs, {BOOTSTRAP_IN_IMAGE} and {IMPL_IN_IMAGE} "
                   "are there")
    else:
        report.add("launcher", contract.FAIL, f"`{LAUNCHER_PROBE}` failed: {launched.decode(errors='replace')[-300:]}")
    return report
