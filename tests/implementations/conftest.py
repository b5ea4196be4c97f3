"""Fixtures for the tests of `implementations`: a copy of the tests' own submission-shaped implementation
(tests/implementations/submission/: CPU torch with gloo, a run.sub, a run_and_time.sh, two configs) and its data.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

# The sandbox of the Backend.AI tests, for the runs on it (tests/implementations/test_sandbox_runs.py); with the
# whole suite both folders' tests find the same running sandbox (a second `up` finds it running).
from tests.backendai.conftest import client_config, project_repo, sandbox, training_line  # noqa: F401
from tests.conftest import REPO_ROOT
from tests.imagebuild.wheelhouse import wheelhouse_index, write_simple_index

TORCH_CPU = "torch==2.13.0+cpu"
WHEELHOUSE = Path("/tmp/mlperf-bai-harness/wheelhouse-impl-cpu")
WHEELHOUSE_PORT = 47313  # beside the other wheelhouses (47311, 47312); a stable URL keeps the layer cache
# Held around an import: the suite's two shards build the same layers one after the other, the second from cache.
IMPORT_LOCK = FileLock(WHEELHOUSE.with_name("impl-import.lock"))
SUBMISSION = Path(__file__).with_name("submission")
IMPL = Path("Backend.AI/benchmarks/llama31_8b/implementations/cpu_gloo")


@pytest.fixture
def submission(tmp_path: Path) -> Path:
    """The implementation folder, in the submission layout, copied where a test may change it."""
    shutil.copytree(SUBMISSION, tmp_path / "submission")
    return tmp_path / "submission" / IMPL


def write_points(folder: Path, count: int = 64) -> Path:
    """The data of the tiny implementation: points of y = 2x + 1."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{-1 + 2 * i / (count - 1):.4f} {2 * (-1 + 2 * i / (count - 1)) + 1:.4f}" for i in range(count)]
    (folder / "points.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """What ${DATADIR} holds: the tiny implementation reads ${DATADIR}/tiny/points.txt (run.sub's mount)."""
    write_points(tmp_path / "data" / "tiny")
    return tmp_path / "data"


@pytest.fixture
def add_config(submission: Path) -> Callable[[str, int, int], str]:
    """Write another config_<SYSTEM>.sh of the implementation's shape (nodes x GPUs), sourcing the common one."""
    def add(system: str, nodes: int, gpus: int) -> str:
        name = f"config_{system}.sh"
        (submission / name).write_text(
            "source $(dirname ${BASH_SOURCE[0]})/config_common.sh\n"
            f"export DGXNNODES={nodes}\nexport DGXNGPU={gpus}\nexport BATCHSIZE=1\n")
        return name
    return add


@pytest.fixture(scope="session")
def wheelhouse() -> str:
    """PyTorch's CPU wheel and what it needs, served to image builds (pip finds the wheel in its configuration)."""
    stamp = WHEELHOUSE / ".complete"
    WHEELHOUSE.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(WHEELHOUSE.with_name(f"{WHEELHOUSE.name}.lock")):  # the suite's other shard may be downloading
        if not stamp.exists():
            WHEELHOUSE.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(WHEELHOUSE),
                            "--only-binary=:all:", "--python-version", "3.11", TORCH_CPU], check=True, timeout=1800)
            write_simple_index(WHEELHOUSE)
            stamp.touch()
    return wheelhouse_index(WHEELHOUSE, WHEELHOUSE_PORT)


def import_image(reference: str, base_image: str, wheelhouse: str, *extra: str,
                 env: dict[str, str] | None = None) -> str:
    """`invoke impl.import` of the tests' implementation: built FROM the local base, checked, pushed."""
    with IMPORT_LOCK:
        done = subprocess.run([sys.executable, "-m", "invoke", "impl.import", str(SUBMISSION / IMPL), "--image",
                               reference, "--profile", "cpu", "--build-arg", f"FROM_IMAGE_NAME={base_image}",
                               "--build-arg", f"PIP_INDEX_URL={wheelhouse}", "--network", "host", "--push",
                               "--insecure", *extra],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"{reference}: [launcher] pass" in done.stdout
    assert f"{reference}: [cluster-ssh] pass" in done.stdout
    return reference
