"""Fixtures for the Backend.AI sandbox tests: one sandbox per Backend.AI line, brought up one after
the other (pytest finishes every test of one line and takes its sandbox down before the next), and
the batch images each line's tests use.

MLPERF_BAI_TEST_LINES picks the lines (default: 26.9, the newest; 26.4 LTS and 23.09 run in a scheduled
workflow, .github/workflows/backendai-lines.yml, and any list of them can be given); MLPERF_BAI_TEST_PORT_BASE
and MLPERF_BAI_TEST_SANDBOX move the suite's ports and folders, so that another checkout's suite can run on the
same machine at the same time; MLPERF_BAI_TEST_KEEP leaves them running for a rerun. The sandboxes keep
LOG_CAP of a container's log (Backend.AI's default is 10M), so every test's run shows that its output survives
the cap, and the 26.x ones run two agents for multi-node sessions.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from common.backendai import client as bai_client
from common.backendai import register as bai_register
from common.backendai.sandbox import bootstrap, control
from common.backendai.sandbox.layout import SandboxLayout, SandboxOptions, SandboxPorts
from common.backendai.sandbox.lines import line_of
from common.backendai.server import Server
from common.labels.dockerfile import inject_labels
from common.labels.rules import resolve_labels
from tests.imagebuild.wheelhouse import (
    TORCH_WITH_VISION,
    TRAINING_BUILD_LOCK,
    TRAINING_WHEELHOUSE,
    TRAINING_WHEELHOUSE_PORT,
    ensure_wheelhouse,
    wheelhouse_index,
)

# Away from the default (18000) so a developer's own sandboxes keep running beside the tests; each
# line adds its own offset (23.09 +0, 26.9 +2000, 26.4 +4000).
TEST_PORT_BASE = int(os.environ.get("MLPERF_BAI_TEST_PORT_BASE", "28000"))
# Each line in its own subfolder, kept between runs (down removes the data but keeps the virtualenv),
# so that a rerun skips pip.
TEST_ROOT = Path(os.environ.get("MLPERF_BAI_TEST_SANDBOX", "/tmp/mlperf-bai-sandbox-test"))
TEST_LINES = [line_of(name) for name in os.environ.get("MLPERF_BAI_TEST_LINES", "26.9").split(",")]
LOG_CAP = "256k"
# Set (to anything) to leave the sandboxes running after the tests: a rerun then finds them up (developers).
KEEP_ENV = "MLPERF_BAI_TEST_KEEP"
# The runs that prepare a dataset in a session or train (one or two containers, two agents, killed, preempted, timed
# out, the README path, a published implementation) do so on one line, the newest tested: what they prove is the
# client's and the launcher's, the same on every 26.x line. Every line runs the sandbox, the client's rules against
# its manager (batch sessions, output past the cap, mounts, policies, host networking) and the label checks. Set this
# to train on every line.
TRAIN_EVERY_LINE_ENV = "MLPERF_BAI_TEST_TRAIN_EVERY_LINE"
TRAINING_LINE = max(TEST_LINES, key=lambda line: tuple(int(part) for part in line.release.split("."))).name


def options_for(line_name: str) -> SandboxOptions:
    return SandboxOptions(agents=2 if line_of(line_name).in_container else 1, log_cap=LOG_CAP)


def layout_for(line_name: str) -> SandboxLayout:
    line = line_of(line_name)
    return SandboxLayout(TEST_ROOT / line.name, SandboxPorts(TEST_PORT_BASE + line.port_offset), line)


def image_project(layout: SandboxLayout) -> str:
    """The registry project of this line's test images: named after the suite's port base and the line, so that
    no other suite, and not the other line's tests running at the same time, pushes, deletes or rescans them."""
    return f"mlperf-bai-t{TEST_PORT_BASE}-{layout.line.name.replace('.', '')}"


# The project of the benchmark images, which the lines share: the second line finds them in the registry
# (gigabytes of torch not pushed twice); they are built and pushed under TRAINING_BUILD_LOCK, so their content is
# the same whichever line pushes them.
BENCHMARK_PROJECT = f"mlperf-bai-t{TEST_PORT_BASE}"


def image_projects(layout: SandboxLayout) -> list[str]:
    """What the sandbox's registry entry lists (and so rescans)."""
    return [image_project(layout), BENCHMARK_PROJECT]


@pytest.fixture(scope="session", params=[line.name for line in TEST_LINES])
def sandbox(request: pytest.FixtureRequest, docker_engine: None, registry_host: str) -> Iterator[SandboxLayout]:
    layout = layout_for(request.param)
    try:
        control.up(layout, [registry_host], projects=image_projects(layout), options=options_for(request.param))
        yield layout
    finally:
        if not os.environ.get(KEEP_ENV):
            control.down(layout, remove_data=True)


@pytest.fixture(scope="module")
def training_line(sandbox: SandboxLayout) -> None:
    """Skips what trains or prepares a dataset in a session on every line but TRAINING_LINE (unless
    TRAIN_EVERY_LINE_ENV is set); module-scoped, so that a module's dataset fixture can ask for it too."""
    if sandbox.line.name != TRAINING_LINE and not os.environ.get(TRAIN_EVERY_LINE_ENV):
        pytest.skip(f"trains on Backend.AI {TRAINING_LINE} only in this run (set {TRAIN_EVERY_LINE_ENV}=1 "
                    "to train on every line)")


@pytest.fixture(scope="session")
def client_config(sandbox: SandboxLayout) -> bai_client.APIConfig:
    return bai_client.api_config(bootstrap.client_environment(sandbox))


@pytest.fixture(scope="session")
def server(client_config: bai_client.APIConfig) -> Server:
    return bai_client.server(client_config)


@pytest.fixture(scope="session")
def project_repo(sandbox: SandboxLayout, registry_host: str) -> str:
    """registry/project of this line's test images."""
    return f"{registry_host}/{image_project(sandbox)}"


def push(engine: docker.DockerClient, reference: str) -> None:
    for line in engine.images.push(reference, stream=True, decode=True):
        assert "error" not in line, line


@pytest.fixture(scope="session")
def batch_image(base_image: str, project_repo: str, client_config: bai_client.APIConfig) -> str:
    """The local base with the project's CPU label profile, built by the classic builder (23.09
    reads labels from container_config), pushed as a single manifest and registered."""
    reference = f"{project_repo}/sandbox-batch:3.11-debian12"
    dockerfile = inject_labels(f"FROM {base_image}\n", resolve_labels(profile="cpu")).text
    engine = docker.from_env()
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=reference, rm=True)
    push(engine, reference)
    bai_register.register(reference, config=client_config)
    return reference


@pytest.fixture(scope="session")
def benchmark_images(base_image: str, project_repo: str, client_config: bai_client.APIConfig) -> dict[str, str]:
    """Both benchmark images of the matrix entry CUDA 12.4 / Python 3.11, built on the local base with a
    PyTorch and torchvision that train here on the CPU, pushed and registered. Their tags do not change
    between runs, so a machine that ran the tests before reuses the layers in its engine and registry
    (and the second line's build is all cache: only the project in the name differs)."""
    registry_host = project_repo.split("/", 1)[0]
    index = wheelhouse_index(ensure_wheelhouse(TRAINING_WHEELHOUSE, torch=TORCH_WITH_VISION), TRAINING_WHEELHOUSE_PORT)
    engine = docker.from_env()
    references = {}
    with TRAINING_BUILD_LOCK:
        build = subprocess.run(
            [sys.executable, "-m", "common.imagebuild.build", "--cuda", "12.4", "--py", "3.11",
             "--registry", registry_host, "--project", BENCHMARK_PROJECT, "--base-image", base_image,
             "--pip-index-url", index, "--torch-index-url", index, "--network", "host",
             "--torch-requirement", " ".join(TORCH_WITH_VISION)],
            capture_output=True, text=True, check=False, timeout=3600)
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
        for benchmark in ("maskrcnn", "gnmt"):
            reference = f"{registry_host}/{BENCHMARK_PROJECT}/mlperf-{benchmark}:0.1.0-cuda12.4-py3.11"
            push(engine, reference)
            references[benchmark] = reference
    for reference in references.values():
        bai_register.register(reference, config=client_config)
    return references


@pytest.fixture(scope="session")
def unlabelled_image(base_image: str, project_repo: str) -> str:
    """The local base as it is (no Backend.AI labels), pushed as a single manifest."""
    reference = f"{project_repo}/unlabelled:1.0"
    engine = docker.from_env()
    engine.images.get(base_image).tag(reference)
    push(engine, reference)
    return reference
