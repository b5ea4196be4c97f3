"""The Backend.AI label set: profiles (data in images/labels.yaml) and validation as strict as the agent.

Every rule about `ai.backend.*` labels lives here, so that Dockerfile injection, image checks, registry
relabelling and image builds all refuse the same things, with messages naming the label, the value and
the rule. Sources: the agent/manager code of Backend.AI 23.09 and later (see the project's facts sheet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

import yaml

from common.labels.binary_size import BinarySizeError, parse_binary_size
from common.labels.service_ports import ServicePortsError, parse_service_ports

PREFIX = "ai.backend."
PROFILES_FILE = Path(__file__).resolve().parents[2] / "images" / "labels.yaml"

KERNELSPEC = f"{PREFIX}kernelspec"
FEATURES = f"{PREFIX}features"
BASE_DISTRO = f"{PREFIX}base-distro"
RUNTIME_TYPE = f"{PREFIX}runtime-type"
RUNTIME_PATH = f"{PREFIX}runtime-path"
SERVICE_PORTS = f"{PREFIX}service-ports"
ROLE = f"{PREFIX}role"
ENDPOINT_PORTS = f"{PREFIX}endpoint-ports"
MODEL_PATH = f"{PREFIX}model-path"
MODEL_FORMAT = f"{PREFIX}model-format"
ACCELERATORS = f"{PREFIX}accelerators"
CORECOUNT = f"{PREFIX}envs.corecount"
SHMEM = f"{PREFIX}resource.preferred.shmem"
RESOURCE_MIN = f"{PREFIX}resource.min."
RESOURCE_MAX = f"{PREFIX}resource.max."

# Without any of these, the 23.09 manager skips the image at rescan.
REQUIRED_BY_23_09 = (KERNELSPEC, FEATURES, BASE_DISTRO, RUNTIME_TYPE, RUNTIME_PATH)
KNOWN_FEATURES = frozenset({"uid-match", "batch", "query", "user-input", "tty", "operation", "private"})
RUNTIME_TYPES = frozenset({"app", "python", "vendor.aws_polly", "vendor.h2o"})
# Accepted by 23.09 agents, removed in 25.19: the container dies on newer agents.
RUNTIME_TYPES_REMOVED = frozenset({"c", "cpp", "golang", "rust", "java", "haskell", "julia", "lua",
                                   "nodejs", "octave", "php", "r", "scheme", "git"})
ROLES = frozenset({"COMPUTE", "INFERENCE", "SYSTEM"})
# Distros with a libbaihook build; other versions of the same family fall back to the nearest lower.
SUPPORTED_DISTROS = {
    "ubuntu": ("18.04", "20.04", "22.04"),
    "centos": ("7.6", "7.9", "8.0"),
    "alpine": ("3.8",),
}
DISTRO = re.compile(r"^(?P<family>[a-z]+)(?P<version>\d+(?:\.\d+)*)$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SET_BY_BACKEND_AI = (f"{PREFIX}customized-image.",)
CONTAINER_ONLY = frozenset(f"{PREFIX}{name}" for name in (
    "agent-id", "kernel-id", "session-id", "owner", "owner-user-id", "owner-project-id",
    "internal.block-service-ports", "cluster-network", "system", "version"))
KNOWN_LABELS = frozenset({KERNELSPEC, FEATURES, BASE_DISTRO, RUNTIME_TYPE, RUNTIME_PATH, SERVICE_PORTS,
                          ROLE, ENDPOINT_PORTS, MODEL_PATH, MODEL_FORMAT, ACCELERATORS, CORECOUNT, SHMEM})
# Where these rules refuse what Backend.AI's own label validation (ai.backend.common.docker's
# validate_image_labels, run at rescan) lets through, and why: a label Backend.AI accepts at rescan
# but that fails later, or that no release reads as meant. The differential test against Backend.AI's
# validators (tests/backendai/test_labels_against_backendai.py) holds the rules to this list.
STRICTER = {
    "required": "24.09+ fill missing labels with defaults; 23.09 skips the image, so they are required",
    "type": "values must be strings; the manager reads them as given",
    "customized-image": "Backend.AI sets these on committed sessions; a built image carrying them is hidden",
    "container-only": "the agent sets these on containers; on an image they mislead",
    "service-ports": "the manager's rescan drops malformed items silently; the agent refuses the whole label "
                     "when a session starts (the grammar is the agent's, common/labels/service_ports.py)",
    "inference": "an INFERENCE image needs a model path (26.x takes an empty one, which is the working folder)",
    "features": "empty tokens (double or outer spaces) are kept by the manager and match no feature",
    "base-distro": "the agent has kernel runners only for these families; others fail at session start",
    "runtime-type": "the kernel runner starts only these; anything else exits at start",
    "runtime-path": "an empty path is no program",
    "accelerators": "device names are lowercase identifiers; anything else matches no plugin",
    "envs.corecount": "the agent sets these as environment variable names",
    "binary-size": "a size the agent cannot parse makes session creation fail",
    "resource-slot": "a resource label without a slot name sets nothing",
    "resource-decimal": "session creation parses slot values as decimals and fails on anything else",
}
STRICTER_THAN_BACKEND_AI = frozenset(STRICTER)


def is_root_user(user: str) -> bool:
    """Whether an image's USER (empty: not set) leaves Backend.AI's entrypoint running as root."""
    name, _, group = user.partition(":")
    return name in ("", "root", "0") and group in ("", "root", "0")


class LabelValidationError(ValueError):
    """Labels Backend.AI would refuse; `report` holds every finding."""

    def __init__(self, report: ValidationReport, source: str = "labels") -> None:
        self.report = report
        lines = "\n".join(f"  {finding}" for finding in report.errors)
        super().__init__(f"{source}: {len(report.errors)} invalid Backend.AI label(s):\n{lines}")


class ProfileError(KeyError):
    """An unknown label profile or a malformed profiles file."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Finding:
    label: str
    value: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        shown = "(missing)" if self.value is None else repr(self.value)
        return f"{self.label}={shown}: {self.message} [{self.rule}]"


@dataclass
class ValidationReport:
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, label: str, value: str | None, rule: str, message: str) -> None:
        self.errors.append(Finding(label, value, rule, message))

    def warn(self, label: str, value: str | None, rule: str, message: str) -> None:
        self.warnings.append(Finding(label, value, rule, message))

    def raise_for_errors(self, source: str = "labels") -> None:
        if self.errors:
            raise LabelValidationError(self, source)


@cache
def load_profiles(path: Path = PROFILES_FILE) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(defaults, profiles) from images/labels.yaml, values as strings."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"cannot read label profiles {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("defaults"), dict) \
            or not isinstance(data.get("profiles"), dict):
        raise ProfileError(f"{path}: expected mappings 'defaults' and 'profiles'")

    def strings(mapping: Mapping, where: str) -> dict[str, str]:
        bad = [key for key, value in mapping.items() if isinstance(value, dict | list) or value is None]
        if bad:
            raise ProfileError(f"{path}: {where}: labels {bad} need scalar values")
        return {str(key): str(value) for key, value in mapping.items()}

    profiles = {name: strings(labels or {}, f"profile {name!r}")
                for name, labels in data["profiles"].items()}
    return strings(data["defaults"], "defaults"), profiles


def resolve_labels(profile: str | None = None, overrides: Mapping[str, str] | None = None,
                   *, path: Path = PROFILES_FILE) -> dict[str, str]:
    """Defaults, then the named profile, then overrides (an empty override value removes the label)."""
    defaults, profiles = load_profiles(path)
    labels = dict(defaults)
    if profile is not None:
        if profile not in profiles:
            raise ProfileError(f"unknown label profile {profile!r}; {path} defines {sorted(profiles)}")
        labels.update(profiles[profile])
    for key, value in (overrides or {}).items():
        if value == "":
            labels.pop(key, None)
        else:
            labels[key] = value
    return labels


def parse_assignments(items: Iterable[str], what: str = "--label") -> dict[str, str]:
    """KEY=VALUE strings from the command line into a dict (an empty VALUE is kept as '')."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {item!r}: expected KEY=VALUE")
        result[key.strip()] = value
    return result


def validate_labels(labels: Mapping[str, str], *, accept_newer_agents: bool = False) -> ValidationReport:
    """Check ai.backend.* labels the way the 23.09 manager (rescan) and agent (session start) do."""
    report = ValidationReport()
    for key in REQUIRED_BY_23_09:
        if key not in labels:
            report.error(key, None, "required",
                         "missing; Backend.AI 23.09 skips images without it at rescan")
    for key, value in labels.items():
        if not key.startswith(PREFIX):
            continue
        if not isinstance(value, str):
            report.error(key, repr(value), "type", "label values are strings")
            continue
        _check_label(report, key, value, labels, accept_newer_agents)
    _check_role(report, labels)
    _check_shmem_against_mem(report, labels)
    return report


def _check_label(report: ValidationReport, key: str, value: str, labels: Mapping[str, str],
                 accept_newer_agents: bool) -> None:
    checks = {
        KERNELSPEC: _check_kernelspec,
        FEATURES: _check_features,
        BASE_DISTRO: _check_base_distro,
        RUNTIME_TYPE: _check_runtime_type,
        RUNTIME_PATH: _check_runtime_path,
        ACCELERATORS: _check_accelerators,
        CORECOUNT: _check_corecount,
        SHMEM: _check_binary_size,
    }
    if key.startswith(SET_BY_BACKEND_AI):
        report.error(key, value, "customized-image",
                     "set by Backend.AI when a session is committed; an image carrying it is hidden "
                     "from other users (ImageNotFound)")
    elif key in CONTAINER_ONLY:
        report.error(key, value, "container-only", "set by the agent on containers, never on images")
    elif key == SERVICE_PORTS:
        try:
            parse_service_ports(value, accept_newer_protocols=accept_newer_agents)
        except ServicePortsError as exc:
            report.error(key, value, "service-ports", str(exc))
    elif key in checks:
        checks[key](report, key, value)
    elif key.startswith((RESOURCE_MIN, RESOURCE_MAX)):
        _check_resource(report, key, value)
    elif key not in KNOWN_LABELS:
        report.warn(key, value, "unknown-label", "not a label Backend.AI reads; check the spelling")


def _check_kernelspec(report: ValidationReport, key: str, value: str) -> None:
    try:
        number = int(value)
    except ValueError:
        report.error(key, value, "kernelspec", "must be an integer")
        return
    if number != 1:
        report.error(key, value, "kernelspec", "must be 1 (MIN_KERNELSPEC = MAX_KERNELSPEC = 1)")


def _check_features(report: ValidationReport, key: str, value: str) -> None:
    tokens = value.split(" ")
    if any(token == "" for token in tokens):
        report.error(key, value, "features",
                     "tokens must be separated by single spaces, with no leading/trailing space")
        return
    unknown = [token for token in tokens if token not in KNOWN_FEATURES]
    if unknown:
        report.warn(key, value, "features",
                    f"unknown feature token(s) {unknown}; known: {sorted(KNOWN_FEATURES)}")
    if "uid-match" not in tokens:
        report.warn(key, value, "features",
                    "without uid-match the agent does not map the user's uid/gid: files written "
                    "to mounted folders get the wrong owner")


def _check_base_distro(report: ValidationReport, key: str, value: str) -> None:
    match = DISTRO.match(value)
    if match is None:
        report.error(key, value, "base-distro",
                     "must be <family><version> such as ubuntu22.04, centos7.9 or alpine3.8")
        return
    family, version = match["family"], match["version"]
    if family not in SUPPORTED_DISTROS:
        report.error(key, value, "base-distro",
                     f"the agent has no kernel runner for {family!r} (UnsupportedBaseDistroError); "
                     f"use one of {sorted(SUPPORTED_DISTROS)} with a compatible libc, e.g. ubuntu22.04 "
                     "for a glibc >= 2.35 image")
        return
    known = SUPPORTED_DISTROS[family]
    if version not in known:
        as_tuple = tuple(int(part) for part in version.split("."))
        lower = [v for v in known if tuple(int(p) for p in v.split(".")) <= as_tuple]
        fallback = f"{family}{lower[-1]}" if lower else "no build at all"
        report.warn(key, value, "base-distro",
                    f"no runner built for {value}; the agent falls back to {fallback} "
                    f"(built: {', '.join(family + v for v in known)})")


def _check_runtime_type(report: ValidationReport, key: str, value: str) -> None:
    if value in RUNTIME_TYPES:
        return
    if value in RUNTIME_TYPES_REMOVED:
        report.warn(key, value, "runtime-type",
                    "accepted by 23.09 agents but removed in 25.19; newer agents cannot start it")
        return
    report.error(key, value, "runtime-type",
                 f"the kernel runner accepts {sorted(RUNTIME_TYPES)} (plus legacy types on 23.09); "
                 "anything else makes the container exit at start")


def _check_runtime_path(report: ValidationReport, key: str, value: str) -> None:
    if not value:
        report.error(key, value, "runtime-path", "must not be empty")
    elif not value.startswith("/"):
        report.warn(key, value, "runtime-path",
                    "relative path: the runner resolves it from /home/work, not from PATH")


def _check_accelerators(report: ValidationReport, key: str, value: str) -> None:
    names = value.split(",")
    if any(not re.match(r"^[a-z][a-z0-9_.-]*$", name) for name in names):
        report.error(key, value, "accelerators",
                     "must be a comma-separated list of device names such as cuda or rocm")


def _check_corecount(report: ValidationReport, key: str, value: str) -> None:
    bad = [name for name in value.split(",") if not ENV_NAME.match(name)]
    if bad:
        report.error(key, value, "envs.corecount",
                     f"must be a comma-separated list of environment variable names; bad: {bad}")


def _check_binary_size(report: ValidationReport, key: str, value: str) -> None:
    try:
        parse_binary_size(value)
    except BinarySizeError as exc:
        report.error(key, value, "binary-size", f"{exc}; Backend.AI sizes are binary (1g = 1 GiB)")


def _check_resource(report: ValidationReport, key: str, value: str) -> None:
    slot = key.split(".", 4)[4] if key.count(".") >= 4 else ""
    if not slot:
        report.error(key, value, "resource-slot",
                     "needs a slot name after resource.min./resource.max. (cpu, mem, cuda.device, ...)")
        return
    if slot == "mem":
        _check_binary_size(report, key, value)
        return
    try:
        number = Decimal(value)
    except InvalidOperation:
        report.error(key, value, "resource-decimal",
                     f"slot {slot!r} takes a decimal number (session creation parses it as Decimal)")
        return
    if not number.is_finite() or number < 0:
        report.error(key, value, "resource-decimal", f"slot {slot!r} needs a finite number >= 0")
    elif key.startswith(RESOURCE_MIN) and slot.startswith("cuda.") and number > 0:
        report.warn(key, value, "resource-gpu-minimum",
                    "a GPU minimum > 0 makes every session request a GPU, and fails where the "
                    "resource group does not serve this slot")


def _check_role(report: ValidationReport, labels: Mapping[str, str]) -> None:
    role = labels.get(ROLE)
    if role is None:
        return
    if role not in ROLES:
        report.error(ROLE, role, "role", f"must be one of {sorted(ROLES)} (case-sensitive)")
        return
    if role != "INFERENCE":
        return
    for key in (ENDPOINT_PORTS, MODEL_PATH, MODEL_FORMAT):
        if not labels.get(key):
            report.error(key, labels.get(key), "inference", "required when ai.backend.role=INFERENCE")
    endpoints = labels.get(ENDPOINT_PORTS)
    if not endpoints:
        return
    try:
        ports = {p.name: p.protocol for p in parse_service_ports(labels.get(SERVICE_PORTS, ""))}
    except ServicePortsError:
        return
    for name in endpoints.split(","):
        if name not in ports:
            report.error(ENDPOINT_PORTS, endpoints, "inference",
                         f"ai.backend.endpoint-ports contains an undefined service port: {name}")
        elif ports[name] != "preopen":
            report.error(ENDPOINT_PORTS, endpoints, "inference",
                         f"The endpoint-port {name} must be a preopen service-port.")


def _check_shmem_against_mem(report: ValidationReport, labels: Mapping[str, str]) -> None:
    shmem, mem = labels.get(SHMEM), labels.get(f"{RESOURCE_MIN}mem")
    if shmem is None or mem is None:
        return
    try:
        if parse_binary_size(shmem) >= parse_binary_size(mem):
            report.warn(SHMEM, shmem, "shmem",
                        f"shared memory must be smaller than the memory requested; the image "
                        f"minimum is {mem}, so sessions at the minimum are refused")
    except BinarySizeError:
        return
