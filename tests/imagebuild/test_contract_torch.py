"""The contract's torch rules on the probe lines an image prints: each branch of torch-cuda (pass, FAIL, and
skip only for a CPU build on a substituted base), and torch itself (a missing torch is a skip only where the
image says it was built without one). The same rules run inside real images in test_build_and_contract.py."""

from __future__ import annotations

import json

import pytest

from common.imagebuild import matrix as m
from common.imagebuild.contract import MARK, ContractReport, check_torch, parse_probe

BASE = "mlperf-bai-test/debian-python:bookworm"
NVIDIA_BASE = {"org.opencontainers.image.base.name": "nvidia/cuda:13.0.0-base-ubuntu22.04"}
SUBSTITUTED = {m.SUBSTITUTED_LABEL: "true", "org.opencontainers.image.base.name": BASE}


def torch_checks(torch: dict | None, labels: dict[str, str], cuda: str, error: str = "") -> list[tuple[str, str, str]]:
    python = {"python": "3.11.2", "services": {}, **({"torch": torch} if torch else {"torch_error": error})}
    report = ContractReport("image")
    check_torch(report, parse_probe(f"{MARK}python {json.dumps(python)}\n"), labels, cuda)
    return [(c.rule, c.status, c.message) for c in report.checks]


@pytest.mark.parametrize("labels", [NVIDIA_BASE, SUBSTITUTED])
def test_a_torch_built_for_the_tags_cuda_passes(labels: dict[str, str]) -> None:
    checks = torch_checks({"version": "2.9.1+cu130", "cuda": "13.0"}, {**labels, m.TORCH_LABEL: "2.9.1"}, "13.0")
    assert checks == [("torch", "pass", "torch 2.9.1+cu130 imports"),
                      ("torch-cuda", "pass", "torch built for CUDA 13.0")]


@pytest.mark.parametrize("labels", [NVIDIA_BASE, SUBSTITUTED])
def test_a_torch_built_for_another_cuda_fails(labels: dict[str, str]) -> None:
    checks = torch_checks({"version": "2.9.1+cu130", "cuda": "13.0"}, {**labels, m.TORCH_LABEL: "2.9.1"}, "12.4")
    assert checks[1] == ("torch-cuda", "FAIL", "torch is built for CUDA 13.0, the tag says cuda12.4")


def test_a_cpu_build_is_skipped_on_a_substituted_base_and_fails_on_a_cuda_one() -> None:
    cpu = {"version": "2.13.0+cpu", "cuda": None}
    assert torch_checks(cpu, {**SUBSTITUTED, m.TORCH_LABEL: "2.13.0+cpu"}, "12.4")[1] == (
        "torch-cuda", "skip", f"not checked: torch 2.13.0+cpu is a CPU build on the substituted base {BASE}; "
        "the tag says cuda12.4")
    assert torch_checks(cpu, {**NVIDIA_BASE, m.TORCH_LABEL: "2.13.0+cpu"}, "12.4")[1] == (
        "torch-cuda", "FAIL", "torch is built for CUDA None, the tag says cuda12.4")


def test_a_missing_torch_is_skipped_only_where_the_image_says_it_has_none() -> None:
    error = "ModuleNotFoundError: No module named 'torch'"
    assert torch_checks(None, {**SUBSTITUTED, m.TORCH_LABEL: "none"}, "13.0", error) == [
        ("torch", "skip", f"not checked: built without PyTorch on the substituted base {BASE} ({error})")]
    assert torch_checks(None, {**SUBSTITUTED, m.TORCH_LABEL: "2.9.1"}, "13.0", error) == [
        ("torch", "FAIL", f"import torch failed: {error}")]
