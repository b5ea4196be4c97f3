"""perf/gpu/maskrcnn.py, the prepared GPU check, runs end to end on a CPU at its toy size and reports every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.training]

SCRIPT = Path(__file__).resolve().parents[2] / "perf" / "gpu" / "maskrcnn.py"


def test_the_maskrcnn_gpu_check_runs_at_its_toy_size_on_a_cpu(tmp_path: Path) -> None:
    out = tmp_path / "maskrcnn.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    training = figures["training"]
    assert all(training[f"{kind}_images_per_s"] > 0 for kind in ("ours", "ours_nchw", "plain", "loader"))
    evaluation = figures["evaluation"]
    assert evaluation["inference_images_per_s"] > 0 and evaluation["detections_per_image"] > 0
    assert evaluation["scoring_seconds_per_5000"] > 0 and 0 < evaluation["made_up_ap"]["BBOX"] <= 1
    projection = figures["projection_8_gpus"]
    assert 13 < projection["rcp_epochs"] < 16  # the batch-96 RCP's mean
    assert projection["minutes"] > projection["rcp_epochs"] * projection["epoch_s"] / 60 > 0
    assert "projected on 8 such GPUs" in proc.stdout
