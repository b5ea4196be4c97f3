"""Fixtures for the Backend.AI sandbox tests: a sandbox on its own port base, and a batch image."""

from __future__ import annotations

import io
import os
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

# Away from the default (18000) so a developer's own sandbox keeps running beside the tests; another
# checkout's suite on the same machine sets its own base and root.
TEST_PORT_BASE = int(os.environ.get("MLPERF_BAI_TEST_PORT_BASE", "28000"))
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
def unlabelled_image(base_image: str, registry_host: str) -> str:
    """The local base as it is (no Backend.AI labels), pushed as a single manifest."""
    reference = f"{registry_host}/mlperf-bai-test/unlabelled:1.0"
    engine = docker.from_env()
    engine.images.get(base_image).tag(reference)
    for line in engine.images.push(reference, stream=True, decode=True):
        assert "error" not in line, line
    return reference
