"""Mask R-CNN training on the sample dataset, on CPU: it learns, it logs what MLPerf requires,
it fails cleanly. One run is shared by the tests that read it (an iteration costs seconds)."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean

import pytest

from common.mlperf import compliance
from tests.maskrcnn.conftest import SMALL

pytestmark = [pytest.mark.slow, pytest.mark.training]

ITERATIONS = 24  # one epoch of the 48-image sample at batch 2


def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG " in line]


@pytest.fixture(scope="module")
def learned(maskrcnn_sample: Path, tmp_path_factory: pytest.TempPathFactory):
    from common.mlperf.mllog import MLLog  # noqa: PLC0415 - torch only in training tests
    from object_detection.maskrcnn import distributed, train  # noqa: PLC0415

    log_path = tmp_path_factory.mktemp("learned") / "result_0.txt"
    args = train.build_parser().parse_args([
        "--data-dir", str(maskrcnn_sample), "--seed", "1", "--log-file", str(log_path), *SMALL,
        "--warmup-steps", "10", "--max-iters", str(ITERATIONS)])  # LR: the rules' 0.0025 for batch 2
    with MLLog.open(log_path) as log:
        report = train.run(args, distributed.init(), log)
    return report, log_path


def test_training_lowers_the_loss_and_lifts_bbox_ap(learned) -> None:
    report, _ = learned
    assert report.iterations == ITERATIONS and len(report.losses) == ITERATIONS
    first, last = fmean(report.losses[:6]), fmean(report.losses[-6:])
    assert last < 0.7 * first, report.losses
    assert report.accuracy[-1]["BBOX"] > 0.0, report.accuracy


def test_the_log_misses_nothing_but_the_quality_target(learned) -> None:
    report, log_path = learned
    verdict = compliance.check_log(log_path, "3.1.0")
    assert verdict.quality_target_missed and verdict.other_complaints == [], verdict.complaints
    events = _events(log_path)
    keys = [e["key"] for e in events]
    # The dataset is opened only after the clock starts.
    assert keys.index("init_stop") < keys.index("run_start") < keys.index("train_samples")
    assert events[keys.index("train_samples")]["value"] == 48
    accuracy = events[keys.index("eval_accuracy")]
    assert accuracy["value"] == report.accuracy[0] and accuracy["metadata"]["epoch_num"] == 1
    assert events[-1]["key"] == "run_stop" and events[-1]["metadata"]["status"] == "aborted"


def test_a_missing_dataset_is_named_and_aborts_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from object_detection.maskrcnn import train  # noqa: PLC0415

    log_path = tmp_path / "result_0.txt"
    code = train.main(["--data-dir", str(tmp_path / "nowhere"), "--seed", "1", "--log-file", str(log_path)])
    assert code == train.EXIT_FAULT
    assert "missing" in capsys.readouterr().err and str(tmp_path / "nowhere" / "coco") in log_path.read_text()
    last = _events(log_path)[-1]
    assert last["key"] == "run_stop" and last["metadata"]["status"] == "aborted"


def test_a_crashed_run_resumes_from_its_checkpoint_and_says_so(maskrcnn_sample: Path, tmp_path: Path) -> None:
    from object_detection.maskrcnn import train  # noqa: PLC0415

    common = ["--data-dir", str(maskrcnn_sample), "--seed", "4", "--checkpoint", str(tmp_path / "ckpt.pth"),
              *SMALL, "--warmup-steps", "1"]
    first = train.main([*common, "--log-file", str(tmp_path / "first.txt"), "--max-iters", "2"])
    second = train.main([*common, "--log-file", str(tmp_path / "second.txt"), "--max-iters", "4"])
    assert first == second == train.EXIT_BELOW_TARGET
    events = _events(tmp_path / "second.txt")
    run_start = next(e for e in events if e["key"] == "run_start")
    assert run_start["metadata"]["resumed_from_epoch"] == 1
    assert [e["metadata"]["epoch_num"] for e in events if e["key"] == "epoch_start"] == [2]
    assert next(e for e in events if e["key"] == "epoch_stop")["metadata"]["iterations"] == 2


def test_a_diverging_loss_aborts_the_run(maskrcnn_sample: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from object_detection.maskrcnn import train  # noqa: PLC0415

    log_path = tmp_path / "result_0.txt"
    code = train.main(["--data-dir", str(maskrcnn_sample), "--seed", "1", "--log-file", str(log_path), *SMALL,
                       "--base-lr", "50", "--warmup-steps", "1", "--max-iters", "6"])  # one step to NaN
    assert code == train.EXIT_FAULT
    assert "loss is nan at epoch 1" in capsys.readouterr().err
    last = _events(log_path)[-1]
    assert last["key"] == "run_stop" and last["metadata"]["status"] == "aborted"
    assert last["metadata"]["reason"].startswith("loss is nan")
