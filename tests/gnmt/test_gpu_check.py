"""perf/gpu/gnmt.py, the prepared GPU check, runs end to end on a CPU at its toy size and reports every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.training]

SCRIPT = Path(__file__).resolve().parents[2] / "perf" / "gpu" / "gnmt.py"


def test_the_gnmt_gpu_check_runs_at_its_toy_size_on_a_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gnmt.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["training"]["tokens_per_s"] > 0 and figures["training"]["plain_tokens_per_s"] > 0
    assert figures["beam_search"]["sentences_per_s"] > 0 and figures["beam_search"]["one_at_a_time_sentences_per_s"] > 0
    projection = figures["projection_8_gpus"]
    assert projection["minutes_6_epochs"] > projection["minutes_4_epochs"] > projection["epoch_minutes"] > 0
    assert "projected on 8 such GPUs" in proc.stdout
