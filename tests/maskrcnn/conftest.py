"""Fixtures for the Mask R-CNN benchmark and the MLPerf machinery it shares with GNMT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def driver_env() -> dict[str, str]:
    """Environment for child processes that import the project from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def start_driver(args: list[str], env: dict[str, str], *, module: str) -> subprocess.Popen[str]:
    """Start common.run_and_time's main for a benchmark whose training is `module`."""
    code = (
        "import sys\n"
        "from common import run_and_time as rt\n"
        f"bench = rt.Benchmark('maskrcnn', 'OBJECT_DETECTION', {module!r}, '3.1.0')\n"
        "parser = rt.build_parser(bench, 'test')\n"
        "args, extra = parser.parse_known_args()\n"
        "sys.exit(rt.main(bench, args, extra))\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# Test-only model settings for the ~160 x 120 px sample images: small inputs, trimmed inference,
# few RoIs for the box and mask heads (the mask head dominates an iteration's cost on a CPU).
SMALL = ["--min-size", "128", "--max-size", "192", "--test-proposals", "100", "--detections-per-image", "20",
         "--roi-samples", "64", "--loader-workers", "0"]


@pytest.fixture(scope="session")
def maskrcnn_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample dataset (object_detection.sample), backbone statistics calibrated on its images."""
    from object_detection.sample import build_sample  # noqa: PLC0415

    data_dir = tmp_path_factory.mktemp("maskrcnn-sample")
    build_sample(data_dir, seed=0)
    return data_dir
