"""How the image commands select entries and name images (shared by build, test and push)."""

from __future__ import annotations

import subprocess

import pytest

from common.imagebuild.matrix import ROOT
from common.imagebuild.selection import SelectionError, current_commit
from tests.imagebuild.conftest import run_module


def test_list_prints_the_reference_of_each_selected_entry() -> None:
    result = run_module("common.imagebuild.build", "--list", "--registry", "harbor.example.com", "--project",
                        "bench", "--benchmark", "gnmt", "--cuda", "12.6", "--commit", "ABCDEF0123456789")
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith("  ok")]
    assert [line[1:] for line in lines] == [
        [f"gnmt-cuda12.6-py{py}:", f"harbor.example.com/bench/mlperf-gnmt:0.1.0-cuda12.6-py{py}"]
        for py in ("3.10", "3.11", "3.12", "3.13")]


def test_invalid_project_is_refused_before_anything_runs() -> None:
    result = run_module("common.imagebuild.build", "--project", "My_Project", "--benchmark", "gnmt")
    assert result.returncode == 2
    assert "repository 'My_Project/mlperf-gnmt' is not a valid name" in result.stderr
    assert "== build_images" not in result.stdout


def test_unknown_selection_is_refused() -> None:
    result = run_module("common.imagebuild.contract", "--py", "2.7")
    assert result.returncode == 2
    assert "--py '2.7' is not in the matrix" in result.stderr


def test_commit_comes_from_the_option_then_github_then_git(monkeypatch: pytest.MonkeyPatch) -> None:
    assert current_commit("ABCDEF0123456789") == "abcdef012345"
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
    assert current_commit() == "0123456789ab"
    monkeypatch.delenv("GITHUB_SHA")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert current_commit() == head[:12]
    with pytest.raises(SelectionError, match="at least 12 hex digits"):
        current_commit("main")
