"""perf/gpu/gnmt.py, the prepared GPU check, runs end to end on a CPU at its toy size and reports every figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gpu_check import run_tiny

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(600)]


def test_the_gnmt_gpu_check_runs_at_its_toy_size_on_a_cpu(tmp_path: Path) -> None:
    report, figures = run_tiny("gnmt.py", tmp_path, timeout=300)
    assert figures["training"]["tokens_per_s"] > 0 and figures["training"]["plain_tokens_per_s"] > 0
    assert figures["beam_search"]["sentences_per_s"] > 0 and figures["beam_search"]["one_at_a_time_sentences_per_s"] > 0
    projection = figures["projection_8_gpus"]
    assert projection["minutes_6_epochs"] > projection["minutes_4_epochs"] > projection["epoch_minutes"] > 0
    assert "projected on 8 such GPUs" in report
