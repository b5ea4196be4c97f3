"""Fixtures for the Backend.AI sandbox tests: a sandbox on its own port base, and a batch image."""

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
from common.backendai.sandbox.layout import SandboxLayout, SandboxPorts
from common.labels.dockerfile import inject_labels
from common.labels.rules import resolve_labels
from tests.imagebuild.wheelhouse import TORCH_WITH_VISION, WheelhouseServer, ensure_wheelhouse

# Away from the default (18000) so a developer's own sandbox keeps running beside the tests; another
# checkout's suite on the same machine sets its own base and root.
TEST_PORT_BASE = int(os.environ.get("MLPERF_BAI_TEST_PORT_BASE", "28000"))
TRAINING_WHEELHOUSE = Path("/tmp/mlperf-bai-harness/wheelhouse-training")
TRAINING_WHEELHOUSE_PORT = 47312  # beside the image tests' wheelhouse (47311), each URL stable for the cache
# Kept between runs (down removes the data but keeps the virtualenv), so a rerun skips pip.
TEST_ROOT = Path(os.environ.get("MLPERF_BAI_TEST_SANDBOX", "/tmp/mlperf-bai-sandbox-test"))


@pytest.fixture(scope="session")
def sandbox(docker_engine: None, registry_host: str) -> Iterator[SandboxLayout]:
    layout = SandboxLayout(TEST_ROOT, SandboxPorts(TEST_PORT_BASE))
    control.up(layout, [registry_host])
    try:
        yield layout
    finally:
        control.down(layout, remove_data=True)


@pytest.fixture(scope="session")
def client_config(sandbox: SandboxLayout) -> bai_client.APIConfig:
    return bai_client.api_config(bootstrap.client_environment(sandbox))


@pytest.fixture(scope="session")
def batch_image(base_image: str, registry_host: str, client_config: bai_client.APIConfig) -> str:
    """The local base with the project's CPU label profile, built by the classic builder (23.09
    reads labels from container_config), pushed as a single manifest and registered."""
    reference = f"{registry_host}/mlperf-bai-test/sandbox-batch:3.11-debian12"
    dockerfile = inject_labels(f"FROM {base_image}\n", resolve_labels(profile="cpu")).text
    engine = docker.from_env()
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=reference, rm=True)
    for line in engine.images.push(reference, stream=True, decode=True):
        assert "error" not in line, line
    bai_register.register(reference, config=client_config)
    return reference


@pytest.fixture(scope="session")
def benchmark_images(base_image: str, registry_host: str, client_config: bai_client.APIConfig) -> dict[str, str]:
    """Both benchmark images of the matrix entry CUDA 12.4 / Python 3.11, built on the local base with a
    PyTorch and torchvision that train here on the CPU, pushed and registered. Their tags do not change
    between runs, so a machine that ran the tests before reuses the layers in its engine and registry."""
    with WheelhouseServer(ensure_wheelhouse(TRAINING_WHEELHOUSE, torch=TORCH_WITH_VISION),
                          port=TRAINING_WHEELHOUSE_PORT) as server:
        build = subprocess.run(
            [sys.executable, "-m", "common.imagebuild.build", "--cuda", "12.4", "--py", "3.11",
             "--registry", registry_host, "--project", "mlperf-bai-test", "--base-image", base_image,
             "--pip-index-url", server.index_url, "--torch-index-url", server.index_url, "--network", "host",
             "--torch-requirement", " ".join(TORCH_WITH_VISION)],
            capture_output=True, text=True, check=False, timeout=3600)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    engine = docker.from_env()
    references = {}
    for benchmark in ("maskrcnn", "gnmt"):
        reference = f"{registry_host}/mlperf-bai-test/mlperf-{benchmark}:0.1.0-cuda12.4-py3.11"
        for line in engine.images.push(reference, stream=True, decode=True):
            assert "error" not in line, line
        bai_register.register(reference, config=client_config)
        references[benchmark] = reference
    return references


@pytest.fixture(scope="session")
def unlabelled_image(base_image: str, registry_host: str) -> str:
    """The local base as it is (no Backend.AI labels), pushed as a single manifest."""
    reference = f"{registry_host}/mlperf-bai-test/unlabelled:1.0"
    engine = docker.from_env()
    engine.images.get(base_image).tag(reference)
    for line in engine.images.push(reference, stream=True, decode=True):
        assert "error" not in line, line
    return reference
