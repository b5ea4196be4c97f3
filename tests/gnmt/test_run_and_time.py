"""run_and_time and `invoke gnmt.run` refuse data that does not verify before any timed run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from translation import run_and_time
from translation.layout import Wmt16Layout

pytestmark = pytest.mark.timeout(900)  # its slow tests


def test_unverified_data_costs_no_timed_run(sample_layout: Wmt16Layout, tmp_path: Path, capsys) -> None:
    # The sample's files do not carry the real dataset's checksums.
    code = run_and_time.main(["--data-dir", str(sample_layout.data_dir), "--results-dir", str(tmp_path)])

    out = capsys.readouterr()
    assert code == 1
    assert f"the data in {sample_layout.data_dir} did not verify" in out.err
    assert "RESULT," not in out.out and "STARTING TIMING RUN" not in out.out
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_invoke_task_passes_the_exit_code_on(sample_layout: Wmt16Layout, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "invoke"),
            "gnmt.run",
            "--data-dir",
            str(sample_layout.data_dir),
            "--results-dir",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 1
    assert "did not verify" in proc.stderr
