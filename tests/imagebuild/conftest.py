"""Images built for the tests: the real matrix entries for CUDA 12.4 / Python 3.11, built on the local
Debian base (no CUDA image can be pulled here) with a CPU PyTorch from a local wheelhouse."""

from __future__ import annotations

import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.imagebuild.wheelhouse import (
    PYTORCH_CPU_INDEX,
    TORCH_CPU,
    WheelhouseServer,
    ensure_wheelhouse,
    torch_wheel_source,
)

WHEELHOUSE = Path("/tmp/mlperf-bai-harness/wheelhouse")
SELECTION = ("--cuda", "12.4", "--py", "3.11")
COMMIT = "0123456789abcdef0123"


@dataclass(frozen=True)
class BuiltImages:
    registry: str
    project: str
    base_image: str
    index_url: str
    with_torch: bool
    build_output: str

    def selection(self) -> list[str]:
        return [*SELECTION, "--registry", self.registry, "--project", self.project, "--commit", COMMIT]

    def build_options(self) -> list[str]:
        return ["--base-image", self.base_image, "--pip-index-url", self.index_url,
                "--torch-index-url", self.index_url, "--network", "host",
                "--torch-requirement", TORCH_CPU if self.with_torch else ""]

    def reference(self, benchmark: str) -> str:
        return f"{self.registry}/{self.project}/mlperf-{benchmark}:0.1.0-cuda12.4-py3.11"


def run_module(module: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The same entry point the nox session runs, in a child process."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          input=stdin, check=False, timeout=900)


@pytest.fixture(scope="session")
def wheelhouse_url() -> Iterator[tuple[str, bool]]:
    source = torch_wheel_source()
    if source is None:
        warnings.warn(f"tests/imagebuild build the images without PyTorch: the wheel {TORCH_CPU} (CPython 3.11, "
                      f"linux x86_64) is neither in pip's configured indexes nor on {PYTORCH_CPU_INDEX}; put it "
                      "where pip finds it (PIP_FIND_LINKS) to test the torch checks too", stacklevel=1)
    torch = [TORCH_CPU] if source is not None else []
    with WheelhouseServer(ensure_wheelhouse(WHEELHOUSE, torch=torch, torch_index=source or None)) as server:
        yield server.index_url, source is not None


@pytest.fixture(scope="session")
def built_images(base_image: str, registry_host: str,
                 wheelhouse_url: tuple[str, bool]) -> Iterator[BuiltImages]:
    """Both benchmarks for one CUDA x Python pair, built once per session; the tags are removed at the
    end, the layers stay as cache for the next run."""
    index_url, with_torch = wheelhouse_url
    images = BuiltImages(registry_host, f"test-{uuid.uuid4().hex[:8]}", base_image, index_url,
                         with_torch, "")
    result = run_module("common.imagebuild.build", *images.selection(), *images.build_options())
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    yield BuiltImages(**{**images.__dict__, "build_output": result.stdout})
    for benchmark in ("maskrcnn", "gnmt"):
        for tag in (images.reference(benchmark), f"{images.reference(benchmark)}-git{COMMIT[:12]}"):
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
