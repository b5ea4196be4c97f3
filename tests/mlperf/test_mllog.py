"""common.mlperf.mllog: rank 0 alone logs, to stdout and the file, naming the caller."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.mlperf.mllog import MLLog
from common.mlperf.mllog import constants as mlc


def test_rank_zero_writes_stdout_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "logs" / "result_0.txt"
    with MLLog.open(path, rank=0) as log:
        log.start(mlc.RUN_START)
        log.submission("maskrcnn", org="org", platform="1xCPU")
    lines = path.read_text().splitlines()
    assert capsys.readouterr().out.splitlines() == lines
    records = [json.loads(line.removeprefix(":::MLLOG ")) for line in lines]
    assert [r["key"] for r in records] == ["run_start", "submission_benchmark", "submission_org",
                                           "submission_platform", "submission_division", "submission_status"]
    assert {r["metadata"]["file"] for r in records} == {"tests/mlperf/test_mllog.py"}
    assert records[4]["value"] == "closed" and records[5]["value"] == "onprem"


def test_other_ranks_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "result_0.txt"
    with MLLog.open(path, rank=1) as log:
        assert not log.enabled
        log.event(mlc.SEED, 1)
    assert not path.exists() and capsys.readouterr().out == ""


def test_two_logs_in_one_process_keep_apart(tmp_path: Path) -> None:
    with MLLog.open(tmp_path / "a.txt") as first, MLLog.open(tmp_path / "b.txt") as second:
        first.event(mlc.SEED, 1)
        second.event(mlc.SEED, 2)
    assert '"value": 1' in (tmp_path / "a.txt").read_text() and '"value": 2' not in (tmp_path / "a.txt").read_text()
