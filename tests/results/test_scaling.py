"""common.results.scaling: series on several node counts, efficiency against the ideal lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.results import projection, scaling
from tests.results.shaped import Timing, write_log


def _series(root: Path, system: str, epoch_seconds: float) -> None:
    timing = Timing(first_epoch=1.5 * epoch_seconds, second_epoch=epoch_seconds, epoch=epoch_seconds,
                    eval=0.1 * epoch_seconds)
    for index in range(3):
        write_log(root / system / "maskrcnn" / f"result_{index}.txt", timing, epochs=14)


def test_a_group_per_accelerator_set_with_efficiency_per_point(tmp_path: Path) -> None:
    results = tmp_path / "results"
    # 1, 2 and 4 nodes: 80 s, 44 s and 25 s per epoch (ideal: 80, 40, 20); another GPU set on one node only
    for system, seconds in (("bai-1x8xH100", 80.0), ("bai-2x8xH100", 44.0), ("bai-4x8xH100", 25.0),
                            ("bai-1x8xA100", 160.0)):
        _series(results, system, seconds)
    [group] = scaling.groups(projection.project(results))
    assert group.label == "maskrcnn, 8x H100 per node" and group.unit == "epochs"
    assert [p.nodes for p in group.points] == [1, 2, 4]
    assert [p.throughput for p in group.points] == pytest.approx([3600 / 80, 3600 / 44, 3600 / 25])
    assert [p.throughput_efficiency for p in group.points] == pytest.approx([1.0, 80 / 88, 80 / 100])
    one, _, four = group.points
    assert four.time_efficiency == pytest.approx(one.minutes / 4 / four.minutes)
    assert group.ideal_minutes(4) == pytest.approx(one.minutes / 4)
    text = scaling.scaling_lines(results, "maskrcnn")
    assert text.splitlines()[0] == "scaling of maskrcnn, 8x H100 per node (ideal: from 1 node(s)):"
    assert "       2 node(s)  81.82 epochs/h (91% of ideal)  projected " in text
    assert scaling.scaling_lines(results, "gnmt") == ""
