"""common.extras: a command whose extra is not installed says which one, in one line, and exits non-zero."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest

from common import extras
from tests.conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _distribution(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


@pytest.mark.parametrize("extra", sorted(extras.MODULES))
def test_every_requirement_of_an_extra_is_checked_by_one_of_its_modules(extra: str) -> None:
    providers = importlib.metadata.packages_distributions()
    checked = {dist.lower().replace("_", "-") for module in extras.MODULES[extra]
               for dist in providers.get(module.split(".")[0], [])}
    wanted = {_distribution(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]}
    assert wanted - checked == set()


def test_a_module_outside_the_extra_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=re.escape("'ai.backend.client' is not provided by the 'train' extra")):
        extras.require("train", "x", ("ai.backend.client",))


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with only the project's base dependencies, as after `pip install -e .`."""
    root = tmp_path_factory.mktemp("bare-venv")
    venv.create(root, with_pip=True)
    subprocess.run([root / "bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *PYPROJECT["project"]["dependencies"]], check=True)
    return root


COMMANDS = [
    (["invoke", "maskrcnn.prepare", "--sample"], "the Mask R-CNN sample needs the 'train' extra"),
    (["invoke", "gnmt.prepare", "--sample"], "WMT16 preprocessing needs the 'train' extra"),
    (["invoke", "maskrcnn.run", "--sample"], "the maskrcnn training needs the 'train' extra"),
    (["invoke", "gnmt.run", "--sample"], "the gnmt training needs the 'train' extra"),
    (["invoke", "bai.sandbox-status"], "invoke bai.sandbox-status needs the 'bai' extra"),
    (["python", "-m", "object_detection.download_dataset", "--sample"], "the Mask R-CNN sample needs the 'train'"),
    (["invoke", "results.summary"], "invoke results.summary needs the 'results' extra"),
    (["invoke", "results.report"], "invoke results.report needs the 'results' extra"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "message"), COMMANDS, ids=[" ".join(c[:2]) for c, _ in COMMANDS])
def test_a_command_without_its_extra_says_which_to_install(bare_venv: Path, tmp_path: Path, command: list[str],
                                                           message: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MLPERF_DATA_DIR": str(tmp_path / "data"),
           "BACKEND_ENDPOINT": "http://127.0.0.1:9"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run([str(bare_venv / "bin" / command[0]), *command[1:]], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0
    assert "Traceback" not in output
    assert message in output
    extra = re.search(r"'(\w+)'", message).group(1)
    assert output.splitlines()[-1].endswith(f"pip install -e '.[{extra}]'")


@pytest.mark.slow
@pytest.mark.parametrize("command", [["bai.run", "127.0.0.1:5000/x/y:1", "--command", "true"],
                                     ["bai.register", "127.0.0.1:5000/x/y:1"]], ids=["bai.run", "bai.register"])
def test_talking_to_a_cluster_needs_no_extra(bare_venv: Path, command: list[str]) -> None:
    """The client is the project's own: with the base dependencies only, a cluster command gets as far as
    the manager (here: none answers) instead of asking for an extra."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "BACKEND_ENDPOINT": "http://127.0.0.1:9",
           "BACKEND_ACCESS_KEY": "AKIAEXAMPLE", "BACKEND_SECRET_KEY": "secret"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run([str(bare_venv / "bin/invoke"), *command], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert "cannot reach Backend.AI at BACKEND_ENDPOINT=http://127.0.0.1:9" in output
    assert "extra" not in output and "secret" not in output


@pytest.mark.slow
def test_the_control_plane_needs_no_extra(bare_venv: Path) -> None:
    result = subprocess.run([str(bare_venv / "bin/invoke"), "--list"], cwd=REPO_ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "maskrcnn.run" in result.stdout and "bai.run" in result.stdout


@pytest.mark.parametrize(("module", "requirements"), [
    ("object_detection.run_and_time", "object_detection/requirements.txt"),
    ("translation.run_and_time", "translation/requirements.txt")])
def test_a_benchmark_checks_only_what_its_image_installs(module: str, requirements: str) -> None:
    """The image has its benchmark's requirements and the runtime's torch (+ torchvision), nothing more."""
    checked = importlib.import_module(module).TRAINING_MODULES
    lines = (REPO_ROOT / requirements).read_text().splitlines()
    installed = {_distribution(line) for line in lines if line.strip() and not line.startswith("#")}
    installed |= {"torch", "torchvision"}
    providers = importlib.metadata.packages_distributions()
    for name in checked:
        assert {d.lower() for d in providers[name]} & installed, f"{name} is not installed in the {module} image"
