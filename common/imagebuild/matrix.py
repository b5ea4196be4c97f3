"""The image matrix (images/matrix.yaml): benchmarks x CUDA x Python, checked before any build starts.

Everything that builds, tests, tags or pushes images derives its list of entries from here: the nox
sessions, the GitHub Actions job matrix (`python -m common.imagebuild.matrix github`) and the tags. A bad matrix
(unknown field, duplicate tag, tag Backend.AI would reject, labels that fail validation, a service
port without a service definition, an entry point that is not in the source tree) is refused as a
whole, with every problem named by its entry.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.labels.image_tag import validate_image_reference
from common.labels.rules import ProfileError, resolve_labels, validate_labels
from common.labels.service_ports import ServicePortsError, parse_service_ports

ROOT = Path(__file__).resolve().parents[2]
MATRIX_FILE = ROOT / "images" / "matrix.yaml"
SERVICE_DEFS_DIR = ROOT / "images" / "service-defs"
RUNTIME_DOCKERFILE = "images/Dockerfile"

TOP_FIELDS = {"version", "cuda", "python", "exclude", "labels", "benchmarks"}
CUDA_FIELDS = {"base_image", "torch", "torchvision", "torch_index_url", "driver"}
BENCHMARK_FIELDS = {"dockerfile", "label_profile", "labels", "entrypoints"}
EXCLUDE_FIELDS = {"benchmark", "cuda", "py", "reason"}
MODULE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
# OCI annotation keys (org.opencontainers.image.*) plus the project's own, read back by the contract test.
LABEL_NS = "org.mlperf-backendai"
BENCHMARK_LABEL = f"{LABEL_NS}.benchmark"
CUDA_LABEL = f"{LABEL_NS}.cuda"
PYTHON_LABEL = f"{LABEL_NS}.python"
TORCH_LABEL = f"{LABEL_NS}.torch"
DRIVER_LABEL = f"{LABEL_NS}.cuda-driver-min"
ENTRYPOINTS_LABEL = f"{LABEL_NS}.entrypoints"
SUBSTITUTED_LABEL = f"{LABEL_NS}.base-substituted"


class MatrixError(ValueError):
    """The matrix file is malformed or an entry would produce an image Backend.AI cannot use."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{path}: {len(problems)} problem(s), nothing was built:\n{lines}")


@dataclass(frozen=True)
class Entry:
    """One image: a benchmark built for one CUDA and one Python version."""

    benchmark: str
    cuda: str
    py: str
    base_image: str
    torch: str
    torchvision: str
    torch_index_url: str
    # the NVIDIA driver a node needs (the CUDA toolkit's minimum; the base's NVIDIA_REQUIRE_CUDA asks it)
    driver: str
    dockerfile: str
    label_profile: str | None
    labels: dict[str, str] = field(hash=False)
    entrypoints: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.benchmark}-cuda{self.cuda}-py{self.py}"

    @property
    def repository(self) -> str:
        return f"mlperf-{self.benchmark}"

    @property
    def torch_requirement(self) -> str:
        return f"torch=={self.torch} torchvision=={self.torchvision}"

    def tag(self, version: str, commit: str | None = None) -> str:
        tag = f"{version}-cuda{self.cuda}-py{self.py}"
        return f"{tag}-git{commit}" if commit else tag

    def reference(self, registry: str, project: str, version: str, commit: str | None = None) -> str:
        return f"{registry}/{project}/{self.repository}:{self.tag(version, commit)}"


@dataclass(frozen=True)
class Matrix:
    version: str
    entries: tuple[Entry, ...]
    path: Path

    def select(self, benchmarks: Sequence[str] = (), cudas: Sequence[str] = (),
               pys: Sequence[str] = ()) -> list[Entry]:
        """Entries matching every given axis (an empty axis matches all); unknown values are errors."""
        problems = []
        for axis, wanted, known in (("benchmark", benchmarks, {e.benchmark for e in self.entries}),
                                    ("cuda", cudas, {e.cuda for e in self.entries}),
                                    ("py", pys, {e.py for e in self.entries})):
            problems += [f"--{axis} {value!r} is not in the matrix (known: {sorted(known)})"
                         for value in wanted if value not in known]
        if problems:
            raise MatrixError(self.path, problems)
        selected = [e for e in self.entries
                    if (not benchmarks or e.benchmark in benchmarks) and (not cudas or e.cuda in cudas)
                    and (not pys or e.py in pys)]
        if not selected:
            raise MatrixError(self.path, [f"no entry matches benchmark={list(benchmarks)} "
                                          f"cuda={list(cudas)} py={list(pys)} (all excluded)"])
        return selected

    def github_matrix(self) -> dict[str, list[dict[str, str]]]:
        """The `strategy.matrix` of the image workflow: one job per entry."""
        return {"include": [{"name": e.name, "benchmark": e.benchmark, "cuda": e.cuda, "py": e.py}
                            for e in self.entries]}


def _strings(value: Any, where: str, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or any(isinstance(v, dict | list) or v is None for v in value.values()):
        problems.append(f"{where}: labels must be a mapping of label names to scalar values")
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _unknown(data: Mapping[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    for key in sorted(set(data) - allowed):
        problems.append(f"{where}: unknown field {key!r} (allowed: {sorted(allowed)})")


def _module_exists(module: str, root: Path) -> bool:
    base = root.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__main__.py").is_file()


def check_entry(entry: Entry, version: str, root: Path, service_defs: Path) -> list[str]:
    """Everything about one entry that can be known before building it."""
    problems: list[str] = []
    where = f"entry {entry.name}"
    for commit in (None, "0123456789ab"):
        reference = entry.reference("registry.example.com", "project", version, commit)
        problems += [f"{where}: {error}" for error in validate_image_reference(reference)]
    if not (root / entry.dockerfile).is_file():
        problems.append(f"{where}: dockerfile {entry.dockerfile} does not exist")
    for module in entry.entrypoints:
        if not MODULE.match(module) or not _module_exists(module, root):
            problems.append(f"{where}: entry point {module!r} is not a module in the source tree")
    try:
        labels = resolve_labels(entry.label_profile, entry.labels)
    except ProfileError as exc:
        return [*problems, f"{where}: {exc}"]
    report = validate_labels(labels)
    problems += [f"{where}: label {finding}" for finding in report.errors]
    try:
        ports = parse_service_ports(labels.get("ai.backend.service-ports", ""))
    except ServicePortsError:
        return problems
    for port in ports:
        if port.protocol in ("http", "tcp") and not (service_defs / f"{port.name}.json").is_file():
            problems.append(f"{where}: service port {port.name} ({port.protocol}) has no service "
                            f"definition {service_defs.relative_to(root)}/{port.name}.json")
        elif port.protocol == "preopen":
            problems.append(f"{where}: service port {port.name} is preopen: Backend.AI never starts it, "
                            "and these images have no /opt/container/bootstrap.sh to start it")
    return problems


def load_matrix(path: Path = MATRIX_FILE, *, root: Path = ROOT,
                service_defs: Path = SERVICE_DEFS_DIR) -> Matrix:
    """Read and check the whole matrix; raises MatrixError listing every problem."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MatrixError(path, [f"cannot read: {exc}"]) from exc
    if not isinstance(data, dict):
        raise MatrixError(path, ["expected a mapping at the top level"])
    problems: list[str] = []
    _unknown(data, TOP_FIELDS, "top level", problems)
    version = data.get("version")
    if not isinstance(version, str) or not version:
        problems.append(f"version {version!r} must be a quoted string such as \"0.1.0\"")
    cudas = data.get("cuda") or {}
    pys = data.get("python") or []
    benchmarks = data.get("benchmarks") or {}
    if not isinstance(cudas, dict) or not cudas:
        problems.append("cuda: expected a non-empty mapping of CUDA versions")
        cudas = {}
    if not isinstance(pys, list) or not pys:
        problems.append("python: expected a non-empty list of Python versions")
        pys = []
    # YAML reads 3.10 as the float 3.1: versions must be quoted. The tag grammar checks the rest.
    problems += [f"python: version {p!r} must be a quoted string such as \"3.11\""
                 for p in pys if not isinstance(p, str) or not p]
    problems += [f"cuda: version {c!r} must be a quoted string such as \"12.4\""
                 for c in cudas if not isinstance(c, str) or not c]
    common_labels = _strings(data.get("labels"), "labels", problems)
    for cuda, spec in cudas.items():
        if not isinstance(spec, dict):
            problems.append(f"cuda {cuda}: expected a mapping")
            continue
        _unknown(spec, CUDA_FIELDS, f"cuda {cuda}", problems)
        problems += [f"cuda {cuda}: missing field {key!r}" for key in sorted(CUDA_FIELDS - set(spec))]
    for name, spec in benchmarks.items():
        if not isinstance(spec, dict):
            problems.append(f"benchmark {name}: expected a mapping")
            continue
        _unknown(spec, BENCHMARK_FIELDS, f"benchmark {name}", problems)
        if "dockerfile" not in spec:
            problems.append(f"benchmark {name}: missing field 'dockerfile'")
    exclusions: list[tuple[str | None, ...]] = []
    for index, rule in enumerate(data.get("exclude") or []):
        if not isinstance(rule, dict):
            problems.append(f"exclude[{index}]: expected a mapping")
            continue
        _unknown(rule, EXCLUDE_FIELDS, f"exclude[{index}]", problems)
        if not rule.get("reason"):
            problems.append(f"exclude[{index}]: say why the combination does not exist (reason)")
        exclusions.append(tuple(None if rule.get(k) is None else str(rule[k])
                                for k in ("benchmark", "cuda", "py")))
    if problems:
        raise MatrixError(path, problems)

    entries: list[Entry] = []
    used: set[int] = set()
    for name, spec in benchmarks.items():
        for cuda, cuda_spec in cudas.items():
            for py in pys:
                matches = {index for index, key in enumerate(exclusions)
                           if all(want is None or want == have
                                  for want, have in zip(key, (name, cuda, py), strict=True))}
                if matches:
                    used |= matches
                    continue
                entries.append(Entry(
                    benchmark=str(name), cuda=str(cuda), py=py,
                    base_image=str(cuda_spec["base_image"]), torch=str(cuda_spec["torch"]),
                    torchvision=str(cuda_spec["torchvision"]),
                    torch_index_url=str(cuda_spec["torch_index_url"]), driver=str(cuda_spec["driver"]),
                    dockerfile=str(spec["dockerfile"]), label_profile=spec.get("label_profile"),
                    labels={**common_labels, **_strings(spec.get("labels"), f"benchmark {name}", problems)},
                    entrypoints=tuple(str(m) for m in spec.get("entrypoints") or ())))
    problems += [f"exclude[{index}] matches no entry" for index in range(len(exclusions))
                 if index not in used]
    seen: dict[str, str] = {}
    for entry in entries:
        problems += check_entry(entry, version, root, service_defs)
        tag = f"{entry.repository}:{entry.tag(version)}"
        if tag in seen:
            problems.append(f"entry {entry.name}: tag {tag} is also produced by entry {seen[tag]}")
        seen[tag] = entry.name
    if problems:
        raise MatrixError(path, problems)
    return Matrix(version=version, entries=tuple(entries), path=path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.imagebuild.matrix", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["list", "github"],
                        help="list: one entry name per line; github: `matrix=<json>` for $GITHUB_OUTPUT")
    parser.add_argument("--matrix", type=Path, default=MATRIX_FILE)
    args = parser.parse_args(argv)
    try:
        matrix = load_matrix(args.matrix)
    except MatrixError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.what == "github":
        print(f"matrix={json.dumps(matrix.github_matrix(), separators=(',', ':'))}")
    else:
        print("\n".join(entry.name for entry in matrix.entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
