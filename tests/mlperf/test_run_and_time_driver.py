"""common.mlperf.run_and_time against a torch-free training: timing lines, RESULT, verdicts, the series' end."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from common.mlperf import compliance
from common.results.logs import read_log
from tests.mlperf.conftest import start_driver

CONTRACT = "tests.mlperf.contract_training"


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = start_driver(args, env, module=CONTRACT)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _result_lines(out: str) -> list[list[str]]:
    return [line.split(",") for line in out.splitlines() if line.startswith("RESULT,")]


def test_one_run_prints_timing_lines_result_and_verdict(tmp_path: Path, driver_env: dict[str, str]) -> None:
    results = tmp_path / "results"
    code, out, _ = _run(["--seed", "7", "--results-dir", str(results), "--system", "box"], driver_env)
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[0].startswith("STARTING TIMING RUN AT ")
    assert any(line.startswith("ENDING TIMING RUN AT ") for line in lines)
    [fields] = _result_lines(out)
    assert fields[:3] == ["RESULT", "OBJECT_DETECTION", "7"]
    assert int(fields[3]) >= 0 and fields[4] and fields[5]
    assert "compliance (3.1.0): FAILED: quality target not reached" in out
    log = results / "box" / "maskrcnn" / "result_0.txt"
    assert log.is_file() and not log.with_name("result_0.txt.partial").exists()
    verdict = compliance.check_log(log, "3.1.0")
    assert verdict.quality_target_missed and verdict.other_complaints == []


def test_the_series_ends_with_the_system_description_and_the_summary_line(
    tmp_path: Path, driver_env: dict[str, str]
) -> None:
    results = tmp_path / "results"
    code, out, _ = _run(["--seed", "7", "--results-dir", str(results), "--system", "box"], driver_env)
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[-2] == f"System description: {tmp_path / 'systems' / 'box.json'}"
    assert lines[-1] == ("box/maskrcnn: no score (0 scored run(s): too few for an olympic mean with 1 dropped; "
                         "ruleset 3.1.0 (--ruleset); provisional: 1 of the 5 runs MLPerf requires; "
                         "dropped: result_0.txt (not converged))")
    described = json.loads((tmp_path / "systems" / "box.json").read_text())
    assert (described["submitter"], described["division"], described["system_name"]) == ("test", "closed", "box")


def test_training_exit_code_is_the_drivers(tmp_path: Path, driver_env: dict[str, str]) -> None:
    code, out, _ = _run(["--seed", "1", "--results-dir", str(tmp_path / "results"), "--exit-code", "5"], driver_env)
    assert code == 5
    assert [f[:3] for f in _result_lines(out)] == [["RESULT", "OBJECT_DETECTION", "1"]]


def test_runs_use_consecutive_seeds_and_give_an_olympic_score(tmp_path: Path, driver_env: dict[str, str]) -> None:
    results = tmp_path / "results"
    code, out, _ = _run(["--seed", "10", "--runs", "3", "--results-dir", str(results),
                         "--bbox", "0.5", "--no-compliance"], driver_env)
    assert code == 0
    assert [f[2] for f in _result_lines(out)] == ["10", "11", "12"]
    assert sorted(p.name for p in (results / "local" / "maskrcnn").iterdir()) == [
        "result_0.txt", "result_1.txt", "result_2.txt"]
    summary_line = out.strip().splitlines()[-1]
    assert summary_line.startswith("local/maskrcnn: ") and " minutes (olympic mean of 1 of 3 runs" in summary_line
    assert "provisional: 3 of the 5 runs MLPerf requires" in summary_line
    assert "compliance (3.1.0)" not in out  # --no-compliance: no verdict after each run


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_is_forwarded_logged_and_stops_the_series(
    tmp_path: Path, driver_env: dict[str, str], signum: int
) -> None:
    results = tmp_path / "results"
    proc = start_driver(["--seed", "3", "--runs", "2", "--results-dir", str(results), "--wait"],
                        driver_env, module=CONTRACT)
    assert proc.stdout is not None
    for line in proc.stdout:  # the training prints it after the driver forwards signals to it
        if line.startswith("waiting for a signal"):
            break
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    assert "stopping after run 1 of 2" in err
    log = read_log(results / "local" / "maskrcnn" / "result_0.txt")
    assert log.status == "aborted" and log.problem is None
    assert not (results / "local" / "maskrcnn" / "result_1.txt").exists()
    assert [f[:3] for f in _result_lines(out)] == [["RESULT", "OBJECT_DETECTION", "3"]]
