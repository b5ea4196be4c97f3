"""`invoke maskrcnn.run --sample --probe`: the run stops after its first evaluation and prints its projection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(900)]


def test_a_probe_of_the_sample_prints_its_projection(maskrcnn_sample: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), "maskrcnn.run", "--sample", "--seed", "1", "--probe",
         "--probe-evaluations", "1", "--data-dir", str(maskrcnn_sample), "--results-dir", str(results)],
        capture_output=True, text=True, timeout=1800, check=False, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    assert sorted(p.name for p in (results / "local" / "maskrcnn").iterdir()) == ["probe_0.txt"]
    # the first result comes while epoch 2 trains (evaluation in the background); the probe stops it there
    assert "probe: stopped it after 1 evaluation(s) logged; a probe's log is probe_<i>.txt, never scored" in out
    assert out[-3].startswith("local/maskrcnn: projected score ")
    # the sample's batch (2) is below every RCP batch: held to the smallest, 8
    assert out[-2].startswith("    global batch 2: 12.75 epochs to converge, band 11-14 (mlperf-logging RCP "
                              "training_3.1.0 maskrcnn at batch 8, the smallest")
    assert "from 1 evaluation(s) up to 1 epochs (warm-up included)" in out[-1]
