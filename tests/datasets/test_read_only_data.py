"""A dataset folder mounted read-only (as a cluster run mounts its dataset): `run_and_time --sample` of
either benchmark builds no sample into it and stops before the clock, naming what is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(("module", "prepare"), [("object_detection.run_and_time", "invoke maskrcnn.prepare"),
                                                  ("translation.run_and_time", "invoke gnmt.prepare")])
def test_a_read_only_folder_without_the_sample_is_not_written_and_stops_the_run(
        read_only_view, tmp_path, module: str, prepare: str) -> None:
    source, view = read_only_view
    proc = subprocess.run([sys.executable, "-m", module, "--sample", "--seed", "1", "--data-dir", str(view),
                           "--results-dir", str(tmp_path / "results")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"the data in {view} did not verify; prepare it with `{prepare}`" in proc.stderr
    assert "STARTING TIMING RUN" not in proc.stdout
    assert list(source.iterdir()) == []
