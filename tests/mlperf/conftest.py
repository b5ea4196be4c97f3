"""Helpers for the tests of common.mlperf: run-and-time driven by a torch-free training."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def start_driver(args: list[str], env: dict[str, str], *, module: str) -> subprocess.Popen[str]:
    """Start common.mlperf.run_and_time's main for a benchmark whose training is `module`."""
    code = (
        "import sys\n"
        "from common.mlperf import run_and_time as rt\n"
        f"bench = rt.Benchmark('maskrcnn', 'OBJECT_DETECTION', {module!r}, '3.1.0')\n"
        "parser = rt.build_parser(bench, 'test')\n"
        "args, extra = parser.parse_known_args()\n"
        "sys.exit(rt.main(bench, args, extra))\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
