"""The full run's two shards (noxfile.py's `-n 2`, tests/conftest.py's scheduler): every test of the Backend.AI
line that trains runs in one worker, everything else in the other, each in collection order. Run on a suite of
stand-ins named as the real tests are, which say where they ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

STAND_INS = '''
import os
import pytest

@pytest.mark.parametrize("sandbox", ["26.4", "26.9"])
def test_cluster_run(sandbox):
    with open(os.environ["WHERE"], "a") as out:
        out.write(f"test_cluster_run[{sandbox}] {os.environ['PYTEST_XDIST_WORKER']}\\n")

@pytest.mark.parametrize("n", range(4))
def test_other(n):
    with open(os.environ["WHERE"], "a") as out:
        out.write(f"test_other[{n}] {os.environ['PYTEST_XDIST_WORKER']}\\n")

@pytest.mark.parametrize("sandbox", ["26.9"])
def test_readme_path(sandbox):
    with open(os.environ["WHERE"], "a") as out:
        out.write(f"test_readme_path[{sandbox}] {os.environ['PYTEST_XDIST_WORKER']}\\n")
'''


def test_the_training_line_runs_in_a_shard_of_its_own_and_everything_else_in_the_other(tmp_path: Path) -> None:
    (tmp_path / "test_stand_ins.py").write_text(STAND_INS)
    where = tmp_path / "where.txt"
    env = {**os.environ, "WHERE": str(where), "MLPERF_BAI_TEST_LINES": "26.4,26.9",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "tests.conftest", "-p", "no:cacheprovider",
                          "-q", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    ran = [line.split() for line in where.read_text().splitlines()]
    workers = {test: worker for test, worker in ran}
    training = {workers["test_cluster_run[26.9]"], workers["test_readme_path[26.9]"]}
    rest = {worker for test, worker in ran if not test.endswith("[26.9]")}
    assert len(training) == 1 and len(rest) == 1 and training != rest, ran
    assert [test for test, _ in ran if test.startswith("test_other")] == [f"test_other[{n}]" for n in range(4)]
