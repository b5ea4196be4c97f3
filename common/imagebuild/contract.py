"""The Backend.AI image contract, checked inside a built image (facts: agent runtime requirements).

One container run of the image gathers what the agent relies on: the runtime-path and the Python it
runs, PyTorch and its CUDA build, glibc, the binaries the agent's entrypoint calls, the service
definitions behind the declared ports and the benchmark's entry points. The image config gives the
labels and the USER. Each finding names the image and the rule. A check that cannot apply (PyTorch
absent or CPU-only in an image built on a substituted base) is reported as skipped, with the reason,
never as passed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import docker
from docker.errors import DockerException, ImageNotFound

from common.imagebuild import matrix as m
from common.imagebuild.selection import Outcome, Target, add_selection_arguments, run_cli
from common.labels.image_tag import parse_image_reference
from common.labels.rules import RUNTIME_PATH, SERVICE_PORTS, is_root_user, validate_labels
from common.labels.service_ports import ServicePortsError, parse_service_ports

PASS, FAIL, SKIP = "pass", "FAIL", "skip"
# What the agent's /opt/kernel/entrypoint.sh calls before dropping to the session user.
ENTRYPOINT_BINARIES = ("sh", "bash", "getent", "cut", "sed", "tr", "cat", "chown", "chmod", "ln", "date",
                       "chpasswd", "groupadd", "useradd", "usermod")
# What a cluster session's launcher (common.mlperf.launcher) needs to reach the other containers.
CLUSTER_BINARIES = ("ssh",)
MIN_GLIBC = (2, 17)
SERVICE_DEFS = "/etc/backend.ai/service-defs"
MARK = "@@"

PYTHON_PROBE = """
import glob, importlib.util, json, os, sys
out = {"python": "%d.%d.%d" % sys.version_info[:3], "services": {}}
try:
    import torch
    out["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda}
except Exception as exc:
    out["torch_error"] = "%s: %s" % (type(exc).__name__, exc)
for path in sorted(glob.glob(os.environ["SERVICE_DEFS"] + "/*.json")):
    name = os.path.basename(path)[:-5]
    try:
        with open(path) as fh:
            command = json.load(fh)["command"]
    except Exception as exc:
        out["services"][name] = {"error": "%s: %s" % (type(exc).__name__, exc)}
        continue
    entry = {"command": command}
    if isinstance(command, list) and len(command) > 2 and command[1] == "-m":
        entry["module"] = command[2]
        entry["found"] = importlib.util.find_spec(command[2]) is not None
    out["services"][name] = entry
print(json.dumps(out))
"""

SHELL_PROBE = f"""
for tool in {" ".join((*ENTRYPOINT_BINARIES, *CLUSTER_BINARIES))}; do echo "{MARK}bin $tool $(command -v "$tool")"; done
echo "{MARK}glibc $( (getconf GNU_LIBC_VERSION || ldd --version) 2>&1 | head -n 1)"
if [ -x "$RUNTIME" ] && [ -f "$RUNTIME" ]; then echo "{MARK}runtime executable"
elif [ -e "$RUNTIME" ]; then echo "{MARK}runtime not-executable"
else echo "{MARK}runtime missing"; fi
for def in "$SERVICE_DEFS"/*.json; do [ -f "$def" ] && echo "{MARK}servicedef $(basename "$def" .json)"; done
if [ -x "$RUNTIME" ]; then
    echo "{MARK}python $("$RUNTIME" -c "$PROBE" 2>&1 | tr '\\n' ' ')"
    for module in $ENTRYPOINTS; do
        "$RUNTIME" -m "$module" --help > /tmp/entrypoint.log 2>&1
        echo "{MARK}entrypoint $module $? $(tail -n 3 /tmp/entrypoint.log | tr '\\n' ' ')"
    done
fi
"""


@dataclass(frozen=True)
class Check:
    rule: str
    status: str
    message: str


@dataclass
class ContractReport:
    image: str
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, rule: str, status: str, message: str) -> None:
        self.checks.append(Check(rule, status, message))

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        return [f"{self.image}: [{c.rule}] {c.status}: {c.message}" for c in self.checks]


@dataclass
class Probe:
    """What one run of the shell probe printed, parsed."""

    binaries: dict[str, str] = field(default_factory=dict)
    glibc: str = ""
    runtime: str = "missing"
    python: dict | None = None
    python_output: str = ""
    service_defs: set[str] = field(default_factory=set)
    entrypoints: dict[str, tuple[int, str]] = field(default_factory=dict)


def parse_probe(output: str) -> Probe:
    probe = Probe()
    for line in output.splitlines():
        if not line.startswith(MARK):
            continue
        kind, _, rest = line[len(MARK):].partition(" ")
        if kind == "bin":
            name, _, path = rest.partition(" ")
            probe.binaries[name] = path.strip()
        elif kind == "glibc":
            probe.glibc = rest.strip()
        elif kind == "runtime":
            probe.runtime = rest.strip()
        elif kind == "servicedef":
            probe.service_defs.add(rest.strip())
        elif kind == "python":
            probe.python_output = rest.strip()
            try:
                probe.python = json.loads(rest)
            except json.JSONDecodeError:
                probe.python = None
        elif kind == "entrypoint":
            module, _, status = rest.partition(" ")
            code, _, tail = status.partition(" ")
            probe.entrypoints[module] = (int(code), tail.strip())
    return probe


def run_probe(client: docker.DockerClient, image: str, runtime: str, entrypoints: Sequence[str]) -> str:
    """The probe runs as root whatever the image's USER is (USER is judged from the config)."""
    output = client.containers.run(
        image, entrypoint=["/bin/sh", "-c", SHELL_PROBE], user="root", remove=True, network_mode="none",
        environment={"RUNTIME": runtime, "PROBE": PYTHON_PROBE, "SERVICE_DEFS": SERVICE_DEFS,
                     "ENTRYPOINTS": " ".join(entrypoints)},
        stdout=True, stderr=True)
    return output.decode(errors="replace")


def tag_versions(image: str) -> dict[str, str]:
    """`cuda12.4` and `py3.11` parts of the tag as {"cuda": "12.4", "py": "3.11"}."""
    tag = parse_image_reference(image).tag or ""
    versions = {}
    for part in tag.split("-")[1:]:
        for name in ("cuda", "py"):
            if part.startswith(name) and part[len(name):][:1].isdigit():
                versions[name] = part[len(name):]
    return versions


def _glibc_version(text: str) -> tuple[int, ...] | None:
    for word in text.replace("(", " ").replace(")", " ").split():
        parts = word.split(".")
        if len(parts) >= 2 and all(p.isdigit() for p in parts):
            return tuple(int(p) for p in parts)
    return None


def check_config(report: ContractReport, labels: Mapping[str, str], user: str) -> None:
    findings = validate_labels(labels)
    if findings.ok:
        report.add("labels", PASS, "Backend.AI labels valid")
    for finding in findings.errors:
        report.add("labels", FAIL, str(finding))
    if is_root_user(user):
        report.add("user-root", PASS, "image ends as USER root")
    else:
        report.add("user-root", FAIL, f"image ends as USER {user}; Backend.AI's entrypoint must start as "
                   "root (it edits /etc/passwd and drops to the session user itself)")


def check_runtime(report: ContractReport, probe: Probe, runtime: str, expected_py: str | None) -> None:
    if probe.runtime != "executable":
        report.add("runtime-path", FAIL, f"ai.backend.runtime-path {runtime} is {probe.runtime} in the image")
        return
    if probe.python is None:
        report.add("runtime-path", FAIL, f"{runtime} exists but does not run Python: "
                   f"{probe.python_output[:300]!r}")
        return
    version = probe.python["python"]
    report.add("runtime-path", PASS, f"{runtime} runs Python {version}")
    if expected_py is None:
        report.add("python-version", FAIL, "neither the tag nor the labels say which Python to expect")
    elif version == expected_py or version.startswith(f"{expected_py}."):
        report.add("python-version", PASS, f"Python {version} matches py{expected_py}")
    else:
        report.add("python-version", FAIL, f"{runtime} is Python {version}, the tag says py{expected_py}")


def check_torch(report: ContractReport, probe: Probe, labels: Mapping[str, str],
                expected_cuda: str | None) -> None:
    if probe.python is None:
        report.add("torch", SKIP, "not checked: the runtime Python does not run")
        return
    substituted = labels.get(m.SUBSTITUTED_LABEL) == "true"
    base = labels.get("org.opencontainers.image.base.name", "?")
    torch = probe.python.get("torch")
    if torch is None:
        error = probe.python.get("torch_error", "not importable")
        if substituted and labels.get(m.TORCH_LABEL) == "none":
            report.add("torch", SKIP, f"not checked: built without PyTorch on the substituted base {base} "
                       f"({error})")
        else:
            report.add("torch", FAIL, f"import torch failed: {error}")
        return
    expected = labels.get(m.TORCH_LABEL)
    if expected and torch["version"].split("+")[0] != expected.split("+")[0]:
        report.add("torch", FAIL, f"torch {torch['version']} installed, the labels say {expected}")
    else:
        report.add("torch", PASS, f"torch {torch['version']} imports")
    if torch["cuda"] is None and substituted:
        report.add("torch-cuda", SKIP, f"not checked: torch {torch['version']} is a CPU build on the "
                   f"substituted base {base}; the tag says cuda{expected_cuda}")
    elif torch["cuda"] != expected_cuda:
        report.add("torch-cuda", FAIL, f"torch is built for CUDA {torch['cuda']}, the tag says "
                   f"cuda{expected_cuda}")
    else:
        report.add("torch-cuda", PASS, f"torch built for CUDA {torch['cuda']}")


def check_system(report: ContractReport, probe: Probe) -> None:
    missing = [name for name in ENTRYPOINT_BINARIES if not probe.binaries.get(name)]
    if missing:
        report.add("binaries", FAIL, f"missing {', '.join(missing)}; Backend.AI's entrypoint calls them")
    else:
        report.add("binaries", PASS, "entrypoint binaries present")
    if missing := [name for name in CLUSTER_BINARIES if not probe.binaries.get(name)]:
        report.add("cluster-ssh", FAIL, f"missing {', '.join(missing)} (openssh-client): multi-container "
                   "sessions start the other containers' workers over SSH")
    else:
        report.add("cluster-ssh", PASS, "ssh client for multi-container sessions")
    version = _glibc_version(probe.glibc)
    if version is None:
        report.add("glibc", FAIL, f"cannot tell the C library version ({probe.glibc!r}); the agent's "
                   "kernel runner needs glibc >= 2.17")
    elif version < MIN_GLIBC:
        report.add("glibc", FAIL, f"glibc {'.'.join(map(str, version))} < 2.17")
    else:
        report.add("glibc", PASS, f"glibc {'.'.join(map(str, version))}")


def check_services(report: ContractReport, probe: Probe, labels: Mapping[str, str]) -> None:
    try:
        ports = parse_service_ports(labels.get(SERVICE_PORTS, ""))
    except ServicePortsError as exc:
        report.add("service-defs", FAIL, f"cannot read ai.backend.service-ports: {exc}")
        return
    services = (probe.python or {}).get("services", {})
    for port in ports:
        if port.protocol not in ("http", "tcp"):
            continue
        where = f"{SERVICE_DEFS}/{port.name}.json"
        if port.name not in probe.service_defs:
            report.add("service-defs", FAIL, f"{port.name}:{port.protocol}:{port.ports[0]} is declared but "
                       f"{where} is missing")
        elif "error" in services.get(port.name, {}):
            report.add("service-defs", FAIL, f"{where} is unreadable: {services[port.name]['error']}")
        elif services.get(port.name, {}).get("found") is False:
            report.add("service-defs", FAIL, f"{where} runs module {services[port.name]['module']}, "
                       "which is not installed")
        else:
            report.add("service-defs", PASS, f"{where} present")


def check_entrypoints(report: ContractReport, probe: Probe, entrypoints: Sequence[str]) -> None:
    for module in entrypoints:
        if probe.runtime != "executable":
            report.add("entrypoints", SKIP, f"python -m {module} not checked: the runtime-path does not run")
            continue
        code, tail = probe.entrypoints.get(module, (-1, "did not run"))
        if code == 0:
            report.add("entrypoints", PASS, f"python -m {module} --help works")
        else:
            report.add("entrypoints", FAIL, f"python -m {module} --help exited {code}: {tail[-300:]}")


def check_image(client: docker.DockerClient, image: str) -> ContractReport:
    """Every contract rule for one local image."""
    started = time.monotonic()
    report = ContractReport(image)
    try:
        config = client.images.get(image).attrs["Config"]
    except ImageNotFound:
        report.add("exists", FAIL, "no such local image; build it first")
        return report
    labels = config.get("Labels") or {}
    check_config(report, labels, config.get("User") or "")
    runtime = labels.get(RUNTIME_PATH, "")
    entrypoints = [e for e in labels.get(m.ENTRYPOINTS_LABEL, "").split(",") if e]
    try:
        probe = parse_probe(run_probe(client, image, runtime, entrypoints))
    except DockerException as exc:
        report.add("probe", FAIL, f"the probe container failed (is /bin/sh there?): {exc}")
        return report
    versions = tag_versions(image)
    check_runtime(report, probe, runtime, versions.get("py") or labels.get(m.PYTHON_LABEL))
    check_torch(report, probe, labels, versions.get("cuda") or labels.get(m.CUDA_LABEL))
    check_system(report, probe)
    check_services(report, probe, labels)
    check_entrypoints(report, probe, entrypoints)
    report.seconds = time.monotonic() - started
    return report


def _outcome(name: str, report: ContractReport) -> Outcome:
    for line in report.lines():
        print(line)
    skipped = sum(c.status == SKIP for c in report.checks)
    if report.ok:
        return Outcome(name, True, f"{len(report.checks) - skipped} checks passed, {skipped} skipped "
                       f"({report.seconds:.1f}s)")
    return Outcome(name, False, "; ".join(f"[{c.rule}] {c.message}" for c in report.failures))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="test_images", description=__doc__.splitlines()[0])
    add_selection_arguments(parser)
    parser.add_argument("--image", action="append", default=[],
                        help="check this local image instead of the matrix's (repeatable)")

    def action(args: argparse.Namespace, target: Target) -> list[Outcome]:
        client = docker.from_env()
        images = args.image or [target.reference(entry) for entry in target.entries]
        return [_outcome(image, check_image(client, image)) for image in images]

    return run_cli(argv, parser, action)


if __name__ == "__main__":
    sys.exit(main())
