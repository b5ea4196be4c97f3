"""Runs a prepared GPU check of perf/gpu/ at its toy size on the CPU, as its tests do for every benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def run_tiny(script: str, out_dir: Path, timeout: float) -> tuple[str, dict]:
    """perf/gpu/<script> --tiny --device cpu: its printed report and the figures of its --json file."""
    out = out_dir / f"{Path(script).stem}.json"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "perf" / "gpu" / script), "--tiny", "--device", "cpu",
                           "--json", str(out)], capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())
