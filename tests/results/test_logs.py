"""common.results.logs: run times, evals and throughput from a log, and what makes a log unusable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.results.logs import EpochThroughput, read_log
from tests.results.generated import T0_MS, TRAIN_SAMPLES, Run, write_log


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(f"0: :::MLLOG {json.dumps(r)}\n" for r in records))  # behind a rank prefix
    return path


def _record(time_ms: float, key: str, value=None, **metadata) -> dict:
    return {"time_ms": time_ms, "key": key, "value": value, "metadata": metadata}


def test_times_evals_and_throughput_from_epochs(tmp_path: Path) -> None:
    log = read_log(write_log(tmp_path / "result_0.txt", "maskrcnn", Run(20)))
    assert (log.run_start_ms, log.minutes, log.status, log.problem) == (T0_MS, 20.0, "success", None)
    assert log.submission == {"benchmark": "maskrcnn", "org": "Backend.AI", "division": "closed",
                              "status": "onprem", "platform": "1xCPU"}
    assert [(p.epoch, round(p.minutes, 6)) for p in log.evals] == [(1.0, 5.0), (2.0, 10.0), (3.0, 15.0), (4.0, 20.0)]
    # Each epoch's training is 80 % of its 5 minutes (the rest is its eval).
    expected = TRAIN_SAMPLES["maskrcnn"] / (0.8 * 5 * 60)
    assert [t.epoch for t in log.throughput] == [1.0, 2.0, 3.0, 4.0]
    assert all(t.samples_per_second == pytest.approx(expected) for t in log.throughput)


def test_logged_throughput_wins_and_blocks_count_their_epochs(tmp_path: Path) -> None:
    tracked = read_log(_write(tmp_path / "a.txt", [
        _record(0, "run_start"), _record(10, "tracked_stats", {"throughput": 123.5}, epoch_num=1),
        _record(20, "epoch_start", epoch_num=1), _record(30, "epoch_stop", epoch_num=1), _record(40, "run_stop")]))
    assert tracked.throughput == (EpochThroughput(1.0, 123.5),)
    blocks = read_log(_write(tmp_path / "b.txt", [
        _record(0, "run_start"), _record(0, "train_samples", 1000),
        _record(0, "block_start", first_epoch_num=1, epoch_count=2), _record(4000, "block_stop", first_epoch_num=1),
        _record(5000, "run_stop", status="success")]))
    assert blocks.throughput == (EpochThroughput(1.0, 500.0),)


@pytest.mark.parametrize(("text", "problem"), [
    (":::MLL 1556733029.1 run_start: {\"value\": null}\n",
     "MLPerf v0.6 log format (:::MLL lines), which the current rules do not read"),
    ("training...\n", "no :::MLLOG lines: not an MLPerf log"),
    (':::MLLOG {"key": "run_start", "value": null}\n', "line 1: :::MLLOG record without a 'time_ms' field; "
     "no run_start and no run_stop line (the run did not finish, or the log was cut)"),
    (':::MLLOG [1]\n' * 9 + ':::MLLOG {"time_ms": 1, "key": "run_start"}\n:::MLLOG {"time_ms": 2, "key": "run_stop"}\n',
     "; ".join([*[f"line {n}: :::MLLOG record that cannot be read (list indices must be integers or slices, not str)"
                  for n in (1, 2, 3)], "6 more such lines"])),
])
def test_an_unusable_log_says_why(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "result_0.txt"
    path.write_text(text)
    assert read_log(path).problem == problem
