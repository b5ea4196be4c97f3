"""common.mlperf.results: the MLPerf results layout and the olympic mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.mlperf import results


def _log(path: Path, start_ms: int, stop_ms: int, status: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [{"key": "run_start", "time_ms": start_ms, "metadata": {}},
             {"key": "run_stop", "time_ms": stop_ms, "metadata": {"status": status}}]
    path.write_text("noise\n" + "".join(f":::MLLOG {json.dumps(x)}\n" for x in lines))


def test_next_result_path_takes_the_first_free_index(tmp_path: Path) -> None:
    assert results.next_result_path(tmp_path, "sys", "maskrcnn") == tmp_path / "sys/maskrcnn/result_0.txt"
    _log(tmp_path / "sys/maskrcnn/result_0.txt", 0, 60000, "success")
    _log(tmp_path / "sys/maskrcnn/result_2.txt", 0, 60000, "success")
    assert results.next_result_path(tmp_path, "sys", "maskrcnn").name == "result_1.txt"


def test_olympic_mean_drops_fastest_and_slowest() -> None:
    assert results.olympic_mean([10.0, 1.0, 4.0, 6.0, 100.0]) == pytest.approx((4 + 6 + 10) / 3)


def test_one_unconverged_run_counts_as_the_slowest() -> None:
    assert results.olympic_mean([10.0, 1.0, None, 6.0, 4.0]) == pytest.approx((4 + 6 + 10) / 3)


@pytest.mark.parametrize("minutes", [[1.0, 2.0], [1.0, None, None, 2.0, 3.0]])
def test_invalid_run_sets_are_refused(minutes: list[float | None]) -> None:
    with pytest.raises(results.ResultInvalidError):
        results.olympic_mean(minutes)


def test_summarize_reads_run_times_from_the_logs(tmp_path: Path) -> None:
    for i, (minutes, status) in enumerate([(3, "success"), (5, "success"), (4, "aborted"), (9, "success")]):
        _log(tmp_path / f"s/maskrcnn/result_{i}.txt", 1000, 1000 + minutes * 60000, status)
    summary = results.summarize(tmp_path, "s", "maskrcnn")
    assert [r.minutes for r in summary.runs] == [3.0, 5.0, None, 9.0]
    assert summary.score_minutes == pytest.approx(7.0)


def test_log_without_run_stop_is_named(tmp_path: Path) -> None:
    path = tmp_path / "result_0.txt"
    path.write_text(':::MLLOG {"key": "run_start", "time_ms": 5}\n')
    with pytest.raises(results.LogFormatError, match=r"result_0.txt: no run_stop"):
        results.read_run(path)
