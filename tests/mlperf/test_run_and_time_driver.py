"""common.mlperf.run_and_time, common.mlperf.results and common.mlperf.compliance against a torch-free training."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from common.mlperf import compliance, results
from tests.mlperf.conftest import start_driver

CONTRACT = "tests.mlperf.contract_training"


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = start_driver(args, env, module=CONTRACT)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_one_run_prints_timing_lines_result_and_verdict(tmp_path: Path, driver_env: dict[str, str]) -> None:
    code, out, _ = _run(["--seed", "7", "--results-dir", str(tmp_path), "--system", "box"], driver_env)
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[0].startswith("STARTING TIMING RUN AT ")
    assert any(line.startswith("ENDING TIMING RUN AT ") for line in lines)
    fields = lines[-1].split(",")
    assert fields[:3] == ["RESULT", "OBJECT_DETECTION", "7"]
    assert int(fields[3]) >= 0 and fields[4] and fields[5]
    assert "compliance (3.1.0): FAILED: quality target not reached" in out
    log = tmp_path / "box" / "maskrcnn" / "result_0.txt"
    assert log.is_file() and not log.with_name("result_0.txt.partial").exists()
    verdict = compliance.check_log(log, "3.1.0")
    assert verdict.quality_target_missed and verdict.other_complaints == []


def test_training_exit_code_is_the_drivers(tmp_path: Path, driver_env: dict[str, str]) -> None:
    code, out, _ = _run(["--seed", "1", "--results-dir", str(tmp_path), "--exit-code", "5"], driver_env)
    assert code == 5
    assert out.strip().splitlines()[-1].startswith("RESULT,OBJECT_DETECTION,1,")


def test_runs_use_consecutive_seeds_and_give_an_olympic_score(
    tmp_path: Path, driver_env: dict[str, str]
) -> None:
    code, out, _ = _run(["--seed", "10", "--runs", "3", "--results-dir", str(tmp_path),
                         "--bbox", "0.5", "--no-compliance"], driver_env)
    assert code == 0
    seeds = [line.split(",")[2] for line in out.splitlines() if line.startswith("RESULT,")]
    assert seeds == ["10", "11", "12"]
    assert sorted(p.name for p in (tmp_path / "local" / "maskrcnn").iterdir()) == [
        "result_0.txt", "result_1.txt", "result_2.txt"]
    assert "SCORE,OBJECT_DETECTION," in out and "olympic mean, 3 runs" in out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_is_forwarded_logged_and_stops_the_series(
    tmp_path: Path, driver_env: dict[str, str], signum: int
) -> None:
    proc = start_driver(["--seed", "3", "--runs", "2", "--results-dir", str(tmp_path), "--wait"],
                        driver_env, module=CONTRACT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("waiting for a signal"):
            break
    time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    assert "stopping after run 1 of 2" in err
    log = tmp_path / "local" / "maskrcnn" / "result_0.txt"
    record = results.read_run(log)
    assert record.status == "aborted" and record.minutes is None
    assert not (tmp_path / "local" / "maskrcnn" / "result_1.txt").exists()
    assert out.strip().splitlines()[-1].startswith("RESULT,OBJECT_DETECTION,3,")
