"""object_detection.run_and_time end to end: two gloo workers through torchrun, and an interrupt."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from common.mlperf import compliance
from common.results.logs import read_log
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(1200)]


def _driver(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "object_detection.run_and_time", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_gloo_workers_report_the_global_batch(
    maskrcnn_sample: Path, tmp_path: Path, driver_env: dict[str, str]
) -> None:
    proc = _driver(["--seed", "5", "--data-dir", str(maskrcnn_sample), "--sample", "--nproc-per-node", "2",
                    "--results-dir", str(tmp_path / "results"), "--system", "cpu2", "--global-batch-size", "2",
                    "--max-iters", "2"],
                   driver_env)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 1, err[-3000:]  # torchrun's code for workers that missed the target
    assert "exitcode  : 3" in err
    assert next(ln for ln in out.splitlines() if ln.startswith("RESULT,")).startswith("RESULT,OBJECT_DETECTION,5,")
    assert out.strip().splitlines()[-1].startswith("cpu2/maskrcnn: no score (")  # the summary line ends the series
    log = tmp_path / "results" / "cpu2" / "maskrcnn" / "result_0.txt"
    events = [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines()]
    assert [e["value"] for e in events if e["key"] == "global_batch_size"] == [2]
    assert [e["value"] for e in events if e["key"] == "seed"] == [5]  # rank 0 alone writes the log
    assert events[-1]["metadata"]["status"] == "aborted"  # quality target not reached
    assert compliance.check_log(log, "3.1.0").other_complaints == []
    # both workers trained, one image each: the global batch of 2 is theirs together
    said = [line for line in out.splitlines() if line.startswith("maskrcnn (rank ")]
    assert sorted(said) == [f"maskrcnn (rank {rank} of 2): trained 1 epoch(s), 2 iterations of 1 image(s)"
                            for rank in (0, 1)], out[-3000:]


def test_an_interrupt_logs_aborted_and_exits_non_zero(
    maskrcnn_sample: Path, tmp_path: Path, driver_env: dict[str, str]
) -> None:
    proc = _driver(["--seed", "9", "--data-dir", str(maskrcnn_sample), "--sample", "--no-compliance",
                    "--results-dir", str(tmp_path / "results")], driver_env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"key": "epoch_start"' in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "interrupted by SIGINT" in err
    assert read_log(tmp_path / "results" / "local" / "maskrcnn" / "result_0.txt").status == "aborted"
    assert next(ln for ln in out.splitlines() if ln.startswith("RESULT,")).startswith("RESULT,OBJECT_DETECTION,9,")
