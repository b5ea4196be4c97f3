"""Fixtures for the tests of `implementations`: a copy of the tests' own submission-shaped implementation
(tests/implementations/submission/: CPU torch with gloo, a run.sub, a run_and_time.sh, two configs) and its data.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

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
