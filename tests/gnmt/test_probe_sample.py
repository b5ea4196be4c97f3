"""`invoke gnmt.run --sample --probe`: the run stops after its second evaluation and prints its projection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from translation.layout import Wmt16Layout

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(900)]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_probe_of_the_sample_prints_its_projection(sample_layout: Wmt16Layout, tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), "gnmt.run", "--sample", "--seed", "3", "--probe",
         "--probe-evaluations", "2", "--data-dir", str(sample_layout.data_dir), "--results-dir", str(results)],
        capture_output=True, text=True, timeout=900, check=False, cwd=REPO_ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    assert sorted(p.name for p in (results / "local" / "gnmt").iterdir()) == ["probe_0.txt"]
    assert "probe: stopped it after 2 evaluation(s) logged; a probe's log is probe_<i>.txt, never scored" in out
    assert out[-3].startswith("local/gnmt: projected score ")
    # the sample's batch (32) is below every published GNMT batch: held to the smallest, 2048
    assert out[-2].startswith("    global batch 32: 4.056 epochs to converge, band 3-5 (published gnmt v0.7 logs")
    assert out[-1].startswith("    probe_0.txt           probe      ")
    assert "from 2 evaluation(s) up to 2 epochs" in out[-1]
