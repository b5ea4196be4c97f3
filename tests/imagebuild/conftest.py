"""Images built for the tests: the real matrix entries for CUDA 13.0 / Python 3.11, built on the local
Debian base (no CUDA image can be pulled here) with PyPI's PyTorch, which is built for CUDA 13.0 and runs
on the CPU here, so that every torch check of the contract runs: none is skipped for a missing wheel."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.imagebuild.wheelhouse import (
    TORCH_WITH_VISION,
    TORCH_WITH_VISION_CUDA,
    TRAINING_BUILD_LOCK,
    TRAINING_WHEELHOUSE,
    TRAINING_WHEELHOUSE_PORT,
    ensure_wheelhouse,
    wheelhouse_index,
)

CUDA = TORCH_WITH_VISION_CUDA  # the matrix entry whose CUDA the torch wheel is built for
SELECTION = ("--cuda", CUDA, "--py", "3.11")
COMMIT = "0123456789abcdef0123"


@dataclass(frozen=True)
class BuiltImages:
    registry: str
    project: str
    base_image: str
    index_url: str
    build_output: str

    def selection(self) -> list[str]:
        return [*SELECTION, "--registry", self.registry, "--project", self.project, "--commit", COMMIT]

    def build_options(self) -> list[str]:
        return ["--base-image", self.base_image, "--pip-index-url", self.index_url,
                "--torch-index-url", self.index_url, "--network", "host",
                "--torch-requirement", " ".join(TORCH_WITH_VISION)]

    def reference(self, benchmark: str, cuda: str = CUDA) -> str:
        return f"{self.registry}/{self.project}/mlperf-{benchmark}:0.1.0-cuda{cuda}-py3.11"


def run_module(module: str, *args: str, stdin: str | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """The same entry point the nox session runs, in a child process."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          input=stdin, check=False, timeout=timeout)


@pytest.fixture(scope="session")
def wheelhouse_url() -> str:
    """The local index with PyPI's torch and torchvision; no wheel, no images (the download fails)."""
    return wheelhouse_index(ensure_wheelhouse(TRAINING_WHEELHOUSE, torch=TORCH_WITH_VISION), TRAINING_WHEELHOUSE_PORT)


@pytest.fixture(scope="session")
def built_images(base_image: str, registry_host: str, wheelhouse_url: str) -> Iterator[BuiltImages]:
    """Both benchmarks for one CUDA x Python pair, built once per session; the tags are removed at the
    end, the layers stay as cache for the next run."""
    images = BuiltImages(registry_host, f"test-{uuid.uuid4().hex[:8]}", base_image, wheelhouse_url, "")
    with TRAINING_BUILD_LOCK:
        result = run_module("common.imagebuild.build", *images.selection(), *images.build_options(), timeout=3600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    yield BuiltImages(**{**images.__dict__, "build_output": result.stdout})
    for benchmark in ("maskrcnn", "gnmt"):
        for tag in (images.reference(benchmark), f"{images.reference(benchmark)}-git{COMMIT[:12]}"):
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
