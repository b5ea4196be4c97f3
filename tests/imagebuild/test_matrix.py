"""images/matrix.yaml: the real matrix, and bad matrices refused before any build, naming the entry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.imagebuild.matrix import MATRIX_FILE, MatrixError, load_matrix
from common.labels.image_tag import validate_image_reference
from common.labels.rules import resolve_labels, validate_labels


def write_matrix(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(MATRIX_FILE.read_text())
    edit(data)
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def problems_of(tmp_path: Path, edit) -> list[str]:
    with pytest.raises(MatrixError) as error:
        load_matrix(write_matrix(tmp_path, edit))
    assert "nothing was built" in str(error.value)
    return error.value.problems


def test_real_matrix_covers_the_cuda_versions_current_clusters_run() -> None:
    """H100/H200 nodes run drivers for CUDA 12.8-13.2; Blackwell needs 12.8 or newer."""
    matrix = load_matrix()
    for benchmark in ("maskrcnn", "gnmt"):
        entries = [e for e in matrix.entries if e.benchmark == benchmark]
        assert {"12.6", "12.8", "13.0", "13.2"} <= {e.cuda for e in entries} and len({e.py for e in entries}) >= 2
    names = {e.name for e in matrix.entries}
    assert "maskrcnn-cuda12.4-py3.11" in names and "gnmt-cuda13.2-py3.13" in names
    assert "maskrcnn-cuda13.2-py3.10" not in names  # excluded: no such PyTorch wheel


def test_every_cuda_takes_its_torch_from_pytorchs_index_on_a_base_the_agent_supports() -> None:
    for entry in load_matrix().entries:
        assert entry.torch_index_url == f"https://download.pytorch.org/whl/cu{entry.cuda.replace('.', '')}"
        assert entry.base_image.startswith(f"nvidia/cuda:{entry.cuda}.") and entry.base_image.endswith(
            "-base-ubuntu22.04"), "ubuntu22.04: a base-distro the agent has runners for"
        assert resolve_labels(entry.label_profile, entry.labels)["ai.backend.base-distro"] == "ubuntu22.04"
        assert all(part.isdigit() for part in entry.driver.split(".")), entry.driver


def test_every_entry_has_accepted_tags_and_valid_labels() -> None:
    matrix = load_matrix()
    for entry in matrix.entries:
        moving = entry.reference("harbor.example.com", "mlperf", matrix.version)
        immutable = entry.reference("harbor.example.com", "mlperf", matrix.version, "0a1b2c3d4e5f")
        assert moving == (f"harbor.example.com/mlperf/mlperf-{entry.benchmark}:"
                          f"{matrix.version}-cuda{entry.cuda}-py{entry.py}")
        assert immutable == f"{moving}-git0a1b2c3d4e5f"
        assert validate_image_reference(moving) == validate_image_reference(immutable) == []
        assert validate_labels(resolve_labels(entry.label_profile, entry.labels)).ok


def test_unknown_field_is_refused_naming_the_benchmark(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, lambda d: d["benchmarks"]["gnmt"].update(entrypoint=["x"]))
    assert problems == ["benchmark gnmt: unknown field 'entrypoint' (allowed: "
                        "['dockerfile', 'entrypoints', 'label_profile', 'labels'])"]


def test_unquoted_python_version_is_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, lambda d: d.update(python=[3.10, "3.11"]))
    assert problems == ["python: version 3.1 must be a quoted string such as \"3.11\""]


def test_duplicate_tag_is_refused_naming_both_entries(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, lambda d: d.update(python=["3.11", "3.11"]))
    assert ("entry maskrcnn-cuda12.4-py3.11: tag mlperf-maskrcnn:0.1.0-cuda12.4-py3.11 is also produced "
            "by entry maskrcnn-cuda12.4-py3.11") in problems


def test_tag_backend_ai_rejects_is_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, lambda d: d.update(version="1.0-2"))
    assert any(p.startswith("entry maskrcnn-cuda11.8-py3.10: tag '1.0-2-cuda11.8-py3.10': part '2'")
               for p in problems)


def test_labels_failing_validation_are_refused_naming_entry_and_label(tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["benchmarks"]["maskrcnn"]["labels"] = {"ai.backend.service-ports": "jupyter:http:80"}

    problems = problems_of(tmp_path, edit)
    assert any(p.startswith("entry maskrcnn-cuda12.4-py3.11: label ai.backend.service-ports=")
               and "must be larger than 1024" in p for p in problems)
    assert not any(p.startswith("entry gnmt") for p in problems)


def test_unknown_label_profile_is_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, lambda d: d["benchmarks"]["gnmt"].update(label_profile="gpu"))
    assert any(p.startswith("entry gnmt-cuda12.4-py3.11: unknown label profile 'gpu'") for p in problems)


def test_service_port_without_service_definition_is_refused(tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["labels"]["ai.backend.service-ports"] = "jupyter:http:8080,tensorboard:http:6006"

    problems = problems_of(tmp_path, edit)
    assert ("entry gnmt-cuda12.6-py3.13: service port tensorboard (http) has no service definition "
            "images/service-defs/tensorboard.json") in problems


def test_preopen_port_nothing_would_start_is_refused(tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["benchmarks"]["gnmt"]["labels"] = {"ai.backend.service-ports": "mlflow:preopen:5000"}

    problems = problems_of(tmp_path, edit)
    assert ("entry gnmt-cuda11.8-py3.10: service port mlflow is preopen: Backend.AI never starts it, and "
            "these images have no /opt/container/bootstrap.sh to start it") in problems


def test_entry_point_missing_from_source_tree_is_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, lambda d: d["benchmarks"]["maskrcnn"].update(entrypoints=["nope.run"]))
    assert ("entry maskrcnn-cuda12.4-py3.12: entry point 'nope.run' is not a module in the source tree"
            in problems)


def test_exclusion_matching_nothing_is_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, lambda d: d["exclude"].append({"cuda": "9.0", "reason": "old"}))
    assert problems == [f"exclude[{len(yaml.safe_load(MATRIX_FILE.read_text())['exclude'])}] matches no entry"]


def test_selection_names_unknown_values() -> None:
    matrix = load_matrix()
    assert [e.name for e in matrix.select(["gnmt"], ["12.4"], ["3.11"])] == ["gnmt-cuda12.4-py3.11"]
    with pytest.raises(MatrixError, match=r"--cuda '9.2' is not in the matrix"):
        matrix.select([], ["9.2"], [])
    with pytest.raises(MatrixError, match="all excluded"):
        matrix.select([], ["13.2"], ["3.10"])


def test_github_matrix_command_prints_one_job_per_entry() -> None:
    result = subprocess.run([sys.executable, "-m", "common.imagebuild.matrix", "github"], capture_output=True,
                            text=True, check=True)
    key, _, value = result.stdout.strip().partition("=")
    assert key == "matrix"
    jobs = json.loads(value)["include"]
    assert [job["name"] for job in jobs] == [e.name for e in load_matrix().entries]
    assert jobs[0].keys() == {"name", "benchmark", "cuda", "py"}


def test_bad_matrix_command_exits_non_zero(tmp_path: Path) -> None:
    path = write_matrix(tmp_path, lambda d: d.update(colour="blue"))
    result = subprocess.run([sys.executable, "-m", "common.imagebuild.matrix", "list", "--matrix", str(path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "top level: unknown field 'colour'" in result.stderr
