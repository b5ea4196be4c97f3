"""perf/gpu/maskrcnn.py, the prepared GPU check, runs end to end on a CPU at its toy size and reports every figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gpu_check import run_tiny

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(600)]


def test_the_maskrcnn_gpu_check_runs_at_its_toy_size_on_a_cpu(tmp_path: Path) -> None:
    report, figures = run_tiny("maskrcnn.py", tmp_path, timeout=600)
    training = figures["training"]
    assert all(training[f"{kind}_images_per_s"] > 0 for kind in ("ours", "ours_nchw", "plain", "loader"))
    evaluation = figures["evaluation"]
    assert evaluation["inference_images_per_s"] > 0 and evaluation["detections_per_image"] > 0
    assert evaluation["scoring_seconds_per_5000"] > 0 and 0 < evaluation["made_up_ap"]["BBOX"] <= 1
    projection = figures["projection_8_gpus"]
    assert 13 < projection["rcp_epochs"] < 16  # the batch-96 RCP's mean
    assert projection["minutes"] > projection["rcp_epochs"] * projection["epoch_s"] / 60 > 0
    assert "projected on 8 such GPUs" in report
