"""common.mlperf.results: the MLPerf results layout runs write."""

from __future__ import annotations

from pathlib import Path

from common.mlperf import results


def test_next_result_path_takes_the_first_free_index(tmp_path: Path) -> None:
    assert results.next_result_path(tmp_path, "sys", "maskrcnn") == tmp_path / "sys/maskrcnn/result_0.txt"
    for index in (0, 2):
        path = tmp_path / f"sys/maskrcnn/result_{index}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(":::MLLOG {}\n")
    assert results.next_result_path(tmp_path, "sys", "maskrcnn").name == "result_1.txt"
