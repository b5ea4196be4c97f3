"""Real builds on the Docker engine: both benchmarks for CUDA 13.0 / Python 3.11 on the local base, the
Backend.AI contract checked inside them (every rule passes, torch's CUDA build included, and the same
image tagged for another CUDA fails that rule), broken images refused with the rule named, a failing
entry reported while the others still build."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import docker
import pytest
import yaml

from common.imagebuild.contract import check_image
from common.imagebuild.matrix import MATRIX_FILE, load_matrix
from common.labels.rules import validate_labels
from tests.imagebuild.conftest import COMMIT, CUDA, BuiltImages, run_module

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(3600)]


def contract_lines(images: BuiltImages, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_module("common.imagebuild.contract", *images.selection(), *extra)


def test_build_streams_the_log_and_tags_both_references(built_images: BuiltImages) -> None:
    output = built_images.build_output
    assert "Step 1/" in output and "Successfully tagged" in output
    assert "== build_images: 2 ok, 0 failed" in output
    client = docker.from_env()
    for benchmark in ("maskrcnn", "gnmt"):
        moving = client.images.get(built_images.reference(benchmark))
        immutable = client.images.get(f"{built_images.reference(benchmark)}-git{COMMIT[:12]}")
        assert moving.id == immutable.id
        labels = moving.labels
        assert validate_labels(labels).ok
        assert labels["ai.backend.runtime-path"] == "/opt/venv/bin/python"
        assert labels["org.opencontainers.image.version"] == "0.1.0"
        assert labels["org.opencontainers.image.revision"] == COMMIT[:12]
        assert labels["org.mlperf-backendai.cuda"] == "13.0"
        assert labels["org.mlperf-backendai.cuda-driver-min"] == "580.65.06"
        assert labels["org.mlperf-backendai.python"] == "3.11"
        assert labels["org.mlperf-backendai.torch"] == "2.14.1"
        assert labels["org.mlperf-backendai.base-substituted"] == "true"
        assert moving.attrs["Config"]["User"] == "root"
        assert moving.attrs["Config"]["WorkingDir"] == "/home/work"


def test_contract_passes_every_rule_for_both_benchmarks(built_images: BuiltImages) -> None:
    result = contract_lines(built_images)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== test_images: 2 ok, 0 failed" in result.stdout
    for entry in load_matrix().select([], [CUDA], ["3.11"]):
        image = built_images.reference(entry.benchmark)
        lines = [line for line in result.stdout.splitlines() if line.startswith(f"{image}: ")]
        assert {line.split("[", 1)[1].split("]", 1)[0] for line in lines} == {
            "labels", "user-root", "runtime-path", "python-version", "torch", "torch-cuda", "binaries",
            "cluster-ssh", "glibc", "service-defs", "entrypoints"}
        assert [line for line in lines if "] skip: " in line or "] FAIL: " in line] == []
        assert f"{image}: [cluster-ssh] pass: ssh client for multi-container sessions" in lines
        assert f"{image}: [python-version] pass: Python 3.11." in result.stdout
        assert entry.entrypoints
        for module in entry.entrypoints:
            assert f"{image}: [entrypoints] pass: python -m {module} --help works" in lines
        assert f"{image}: [service-defs] pass: /etc/backend.ai/service-defs/jupyterlab.json present" in lines
        assert f"{image}: [torch] pass: torch 2.14.1+cu130 imports" in lines
        assert f"{image}: [torch-cuda] pass: torch built for CUDA 13.0" in lines


def test_an_image_whose_tag_names_another_cuda_than_its_torch_fails_the_cuda_rule(built_images: BuiltImages) -> None:
    """The same image under a tag that says cuda12.4: its torch is built for 13.0, which the agent's
    CUDA 12.4 nodes cannot run."""
    image = built_images.reference("gnmt", cuda="12.4")
    docker.from_env().images.get(built_images.reference("gnmt")).tag(image)
    try:
        report = check_image(docker.from_env(), image)
        assert [(c.rule, c.message) for c in report.failures] == [
            ("torch-cuda", "torch is built for CUDA 13.0, the tag says cuda12.4")]
    finally:
        subprocess.run(["docker", "rmi", image], capture_output=True, check=False)


def test_the_images_python_runs(built_images: BuiltImages) -> None:
    output = subprocess.run(
        ["docker", "run", "--rm", built_images.reference("gnmt"), "python", "-c",
         "import sys, translation, common.mlperf.run_and_time; print(sys.executable, sys.version_info[:2])"],
        capture_output=True, text=True, check=True).stdout
    assert output.strip() == "/opt/venv/bin/python (3, 11)"


def build_broken(base: str, tag: str, dockerfile: str) -> str:
    client = docker.from_env()
    client.images.build(fileobj=io.BytesIO(f"FROM {base}\n{dockerfile}".encode()),
                        tag=tag, rm=True)
    return tag


def test_broken_image_fails_naming_the_image_and_each_rule(built_images: BuiltImages) -> None:
    image = build_broken(
        built_images.reference("maskrcnn"), f"{built_images.registry}/{built_images.project}/broken:0.1.0-py3.11",
        "RUN rm /opt/venv/bin/python /usr/bin/ssh\n"
        'LABEL ai.backend.service-ports="jupyter:http:8080,tensorboard:http:6006"\n'
        "USER nobody\n")
    try:
        report = check_image(docker.from_env(), image)
        failures = {(c.rule, c.message) for c in report.failures}
        assert ("user-root", "image ends as USER nobody; Backend.AI's entrypoint must start as root (it "
                "edits /etc/passwd and drops to the session user itself)") in failures
        assert ("runtime-path", "ai.backend.runtime-path /opt/venv/bin/python is missing in the image"
                ) in failures
        assert ("cluster-ssh", "missing ssh (openssh-client): multi-container sessions start the other "
                "containers' workers over SSH") in failures
        assert ("service-defs", "tensorboard:http:6006 is declared but "
                "/etc/backend.ai/service-defs/tensorboard.json is missing") in failures
        assert {c.message for c in report.checks if c.status == "skip"} == {
            "not checked: the runtime Python does not run",
            "python -m object_detection.run_and_time not checked: the runtime-path does not run",
            "python -m object_detection.verify_dataset not checked: the runtime-path does not run"}
        result = run_module("common.imagebuild.contract", "--image", image)
        assert result.returncode == 1
        assert f"{image}: [user-root] FAIL: image ends as USER nobody" in result.stdout
        assert "== test_images: 0 ok, 1 failed" in result.stdout
    finally:
        subprocess.run(["docker", "rmi", image], capture_output=True, check=False)


def test_invalid_service_port_label_fails_the_label_rule(built_images: BuiltImages) -> None:
    image = build_broken(built_images.reference("gnmt"),
                         f"{built_images.registry}/{built_images.project}/badport:0.1.0-py3.11",
                         'LABEL ai.backend.service-ports="jupyter:http:80"\n')
    try:
        report = check_image(docker.from_env(), image)
        messages = [c.message for c in report.failures if c.rule == "labels"]
        assert messages == ["ai.backend.service-ports='jupyter:http:80': The service port number 80 must "
                            "be larger than 1024 to run without the root privilege. [service-ports]"]
        assert [c.rule for c in report.failures] == ["labels", "service-defs"]
    finally:
        subprocess.run(["docker", "rmi", image], capture_output=True, check=False)


def test_failed_entry_is_reported_and_the_others_still_build(built_images: BuiltImages,
                                                             tmp_path: Path) -> None:
    data = yaml.safe_load(MATRIX_FILE.read_text())
    data["benchmarks"]["broken"] = {"dockerfile": "tests/imagebuild/failing.Dockerfile", "label_profile": "cuda"}
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump(data))
    result = run_module("common.imagebuild.build", "--matrix", str(matrix), *built_images.selection(),
                        *built_images.build_options(), "--benchmark", "broken", "--benchmark", "maskrcnn")
    assert result.returncode == 1
    summary = result.stdout[result.stdout.index("== build_images"):]
    assert "== build_images: 1 ok, 1 failed" in summary
    assert (f"FAILED broken-cuda{CUDA}-py3.11: entry broken-cuda{CUDA}-py3.11: benchmark image "
            "(tests/imagebuild/failing.Dockerfile): The command '/bin/sh -c echo \"deliberate failure\" && "
            "exit 3' returned a non-zero code: 3") in summary
    assert f"ok     maskrcnn-cuda{CUDA}-py3.11: built in" in summary
    assert "deliberate failure" in result.stdout[:result.stdout.index("== build_images")]
