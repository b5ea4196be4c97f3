"""The project's label rules against Backend.AI's own validators (ai.backend.common of each sandbox's
virtualenv: 23.09 on the host's Python, 26.x in its service container), fed the same generated label
sets, service-port strings, sizes and image references.

Wherever Backend.AI refuses, the project refuses too (it never lets through what a manager or agent
rejects). Where only the project refuses, the reason is one it documents as stricter
(common/labels/rules.py STRICTER_THAN_BACKEND_AI and the grammars' module notes).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.backendai.sandbox import container
from common.backendai.sandbox.layout import SandboxLayout
from common.labels.binary_size import BinarySizeError, parse_binary_size, stricter_than_backend_ai
from common.labels.image_tag import validate_image_reference
from common.labels.rules import STRICTER_THAN_BACKEND_AI, validate_labels
from common.labels.service_ports import ServicePortsError, parse_service_ports

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(5400)]
ORACLE = Path(__file__).with_name("label_oracle.py")
EXAMPLES = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Oracle:
    """One long-lived Python of the sandbox's virtualenv answering one request a line."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def verdict(self, kind: str, value: object) -> tuple[bool, str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"kind": kind, "value": value}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the oracle exited ({self.process.wait()})"
        answer = json.loads(line)
        return answer["ok"], answer["error"]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def oracle(sandbox: SandboxLayout) -> Iterator[Oracle]:
    """The sandbox's virtualenv (installed by its `up`); 26.x's Python is the root filesystem's."""
    argv = [str(sandbox.bin / "python"), "-c", ORACLE.read_text()]
    if sandbox.line.in_container:
        argv = container.run_argv(sandbox, argv)
    running = Oracle(argv)
    yield running
    running.close()


def newer(sandbox: SandboxLayout) -> bool:
    """vnc/rdp service ports are a 26.2+ agent's."""
    return sandbox.line.in_container


# --- service ports -------------------------------------------------------------------------------

NAMES = st.sampled_from(["jupyter", "tensorboard", "my-app", "app_2", "x", "", "bad name", "ü"])
PROTOCOLS = st.sampled_from(["http", "tcp", "preopen", "pty", "vnc", "rdp", "udp", "HTTP", ""])
PORTS = st.one_of(st.integers(0, 70000).map(str),
                  st.lists(st.integers(1000, 70000), min_size=1, max_size=3).map(
                      lambda ports: "[" + ",".join(map(str, ports)) + "]"),
                  st.sampled_from(["", "80a", "[]", "[8080,]", "-1"]))
ITEM = st.tuples(NAMES, PROTOCOLS, PORTS).map(":".join)
SERVICE_PORTS = st.one_of(
    st.lists(ITEM, max_size=4).map(",".join),
    st.tuples(st.lists(ITEM, min_size=1, max_size=3).map(",".join), st.sampled_from([",", ",,", " ", ";"])).map(
        "".join))


@given(value=SERVICE_PORTS)
@EXAMPLES
def test_service_ports_verdicts_agree(oracle: Oracle, sandbox: SandboxLayout, value: str) -> None:
    theirs, why = oracle.verdict("service_ports", value)
    try:
        parse_service_ports(value, accept_newer_protocols=newer(sandbox))
        ours = True
    except ServicePortsError:
        ours = False
    assert ours == theirs, f"{value!r}: Backend.AI {sandbox.line.release} says {why or 'ok'}"


# --- binary sizes --------------------------------------------------------------------------------

SIZES = st.one_of(
    st.tuples(st.sampled_from(["1", "256", "1.5", "0.5", "2048", "0", "10", "-1", "+2", ".5", "1.", "1e3", "0.1"]),
              st.sampled_from(["", "k", "m", "g", "t", "K", "M", "G", "x", " g", "gi", "Gi"]),
              st.sampled_from(["", "b", "ib", "B", "iB", "bytes", "ibytes", "Bytes", "i"])).map("".join),
    st.sampled_from(["1Gi", "1e9", "inf", "Infinity", "nan", "-1g", ".5g", "1.g", "1 g", "1\tg", "1_024m", "g", "",
                     "1.2.3m", "1.5", "0x10"]))


@given(value=SIZES)
@EXAMPLES
def test_binary_size_verdicts_agree_wherever_the_project_is_not_documented_stricter(
        oracle: Oracle, sandbox: SandboxLayout, value: str) -> None:
    theirs, why = oracle.verdict("binary_size", value)
    try:
        parse_binary_size(value)
        ours = None
    except BinarySizeError as error:
        ours = str(error)
    if not theirs:
        assert ours is not None, f"{value!r}: Backend.AI {sandbox.line.release} refuses ({why}), the project accepts"
    elif ours is not None:
        assert stricter_than_backend_ai(value) or "fractional number of bytes" in ours, (
            f"{value!r}: Backend.AI {sandbox.line.release} accepts, the project refuses undocumented: {ours}")


# --- label sets ----------------------------------------------------------------------------------

VALUES = {
    "ai.backend.kernelspec": ["1", "2", "0", "one", ""],
    "ai.backend.features": ["batch query uid-match user-input", "uid-match", "", "batch  query", "unknown-thing"],
    "ai.backend.base-distro": ["ubuntu22.04", "ubuntu24.04", "debian12", "alpine3.8", "centos7.6", "", "Ubuntu"],
    "ai.backend.runtime-type": ["python", "app", "nodejs", "cobol", ""],
    "ai.backend.runtime-path": ["/usr/bin/python3", "python3", ""],
    "ai.backend.role": ["COMPUTE", "INFERENCE", "SYSTEM", "compute"],
    "ai.backend.service-ports": ["jupyter:http:8080", "ipython:pty:3000,jupyter:http:8080", "x:http:80", "",
                                 "bad", "api:preopen:8000"],
    "ai.backend.endpoint-ports": ["api", "jupyter", ""],
    "ai.backend.model-path": ["/models", ""],
    "ai.backend.model-format": ["onnx"],
    "ai.backend.envs.corecount": ["OMP_NUM_THREADS,NPROC", "", "1BAD"],
    "ai.backend.accelerators": ["cuda", "cuda,rocm", "", "CUDA!"],
    "ai.backend.resource.min.mem": ["1g", "256m", "1Gi", "lots"],
    "ai.backend.resource.min.cpu": ["1", "0.5", "-1", "x"],
}
LABELS = st.fixed_dictionaries({}, optional={key: st.sampled_from(values) for key, values in VALUES.items()})


@given(labels=LABELS)
@EXAMPLES
def test_label_set_verdicts_agree_wherever_the_project_is_not_documented_stricter(
        oracle: Oracle, sandbox: SandboxLayout, labels: dict[str, str]) -> None:
    theirs, why = oracle.verdict("labels", labels)
    report = validate_labels(labels, accept_newer_agents=newer(sandbox))
    if not theirs:
        assert not report.ok, f"{labels}: Backend.AI {sandbox.line.release} refuses ({why}), the project accepts"
        return
    undocumented = {finding.rule for finding in report.errors} - STRICTER_THAN_BACKEND_AI
    assert not undocumented, (f"{labels}: Backend.AI {sandbox.line.release} accepts, the project refuses by "
                              f"rules it does not document as stricter: {sorted(undocumented)}")


# --- image references ----------------------------------------------------------------------------

REGISTRIES = st.sampled_from(["127.0.0.1:5000/", "harbor.example.com/", "localhost:5000/"])
COMPONENTS = st.sampled_from(["mlperf", "pytorch", "my-image", "a_b", "a.b", "My", "x", "-bad", "a--b"])
TAGS = st.one_of(
    st.tuples(st.sampled_from(["0.1.0", "1.0", "latest", "2.3.1", "1"]),
              st.lists(st.sampled_from(["cuda12.4", "py3.11", "ubuntu22.04", "cuda13.0", "rc", "1", "py3.11",
                                        "cudnn9", "dev_1", ""]), max_size=3)).map(
        lambda parts: "-".join([parts[0], *parts[1]])),
    st.sampled_from(["-leading", "trailing-", "a" * 129, "with space", "x:y", ""]))
REFERENCES = st.tuples(REGISTRIES, st.lists(COMPONENTS, min_size=1, max_size=3).map("/".join), TAGS).map(
    lambda parts: f"{parts[0]}{parts[1]}:{parts[2]}" if parts[2] else f"{parts[0]}{parts[1]}")


@given(reference=REFERENCES)
@EXAMPLES
def test_image_reference_verdicts_agree_wherever_the_project_is_not_documented_stricter(
        oracle: Oracle, sandbox: SandboxLayout, reference: str) -> None:
    """Documented stricter (common/labels/image_tag.py): the Docker repository grammar (Backend.AI
    takes any name the registry hands it, but no registry takes an uppercase or badly separated
    one), a tag is required, and `_` is refused in platform-tag names (23.09 refuses it)."""
    theirs, why = oracle.verdict("image_ref", reference)
    errors = validate_image_reference(reference)
    if not theirs:
        assert errors, f"{reference}: Backend.AI {sandbox.line.release} refuses ({why}), the project accepts"
        return
    documented = ("is not a valid name", "has no tag", "must be letters followed by a version")
    assert all(any(reason in error for reason in documented) for error in errors), (
        f"{reference}: Backend.AI {sandbox.line.release} accepts, the project refuses: {errors}")
