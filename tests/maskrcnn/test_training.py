"""Mask R-CNN training faults on CPU: a missing dataset, a diverging loss, a damaged sample image,
each named and ending the run (or stopping it before the clock); and the LR the optimizer uses.
The run to the target and the resume after a crash are in test_sample_run.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.maskrcnn.conftest import SMALL

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(1200)]


def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG " in line]


def test_a_missing_dataset_is_named_and_aborts_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from object_detection.maskrcnn import train, training  # noqa: PLC0415

    log_path = tmp_path / "result_0.txt"
    code = train.main(["--data-dir", str(tmp_path / "nowhere"), "--seed", "1", "--log-file", str(log_path)])
    assert code == training.EXIT_FAULT
    assert "missing" in capsys.readouterr().err and str(tmp_path / "nowhere" / "coco") in log_path.read_text()
    last = _events(log_path)[-1]
    assert last["key"] == "run_stop" and last["metadata"]["status"] == "aborted"


def test_a_diverging_loss_aborts_the_run(maskrcnn_sample: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from object_detection.maskrcnn import train, training  # noqa: PLC0415

    log_path = tmp_path / "result_0.txt"
    code = train.main(["--data-dir", str(maskrcnn_sample), "--seed", "1", "--log-file", str(log_path), *SMALL,
                       "--base-lr", "50", "--warmup-steps", "1", "--max-iters", "6"])  # one step to NaN
    assert code == training.EXIT_FAULT
    assert "loss is nan at epoch 1" in capsys.readouterr().err
    last = _events(log_path)[-1]
    assert last["key"] == "run_stop" and last["metadata"]["status"] == "aborted"
    assert last["metadata"]["reason"].startswith("loss is nan")


def test_a_sample_image_cut_short_is_named_before_the_clock_starts(maskrcnn_sample: Path, tmp_path: Path) -> None:
    data = tmp_path / "sample"
    shutil.copytree(maskrcnn_sample, data, copy_function=os.link)  # links: the shared sample stays intact
    victim = sorted((data / "coco" / "val2017").glob("*.jpg"))[3]
    content = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(content[: len(content) // 2])
    proc = subprocess.run([sys.executable, "-m", "object_detection.run_and_time", "--sample", "--seed", "1",
                           "--data-dir", str(data), "--results-dir", str(tmp_path / "results")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1
    assert f"FAILED {victim}: {len(content) // 2} bytes, prepare recorded {len(content)}" in proc.stderr
    assert "STARTING TIMING RUN" not in proc.stdout and not (tmp_path / "results").exists()


def test_the_optimizer_runs_the_logged_schedule_in_each_parameter_group() -> None:
    import torch  # noqa: PLC0415

    from object_detection.maskrcnn import solver  # noqa: PLC0415
    from object_detection.maskrcnn.schedule import schedule_for  # noqa: PLC0415

    schedule = schedule_for(96)
    model = torch.nn.Linear(4, 2)
    optimizer = solver.build_optimizer(model, schedule.base_lr)
    scheduler = solver.build_scheduler(optimizer, schedule)
    seen = []
    for iteration in range(schedule.decay_steps[1] + 1):
        if iteration in (0, 1, schedule.warmup_steps, schedule.decay_steps[0], schedule.decay_steps[1]):
            seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    weights, biases = 0.12, 0.24
    ramp = 625 * 0.000192  # mlperf_linear: the same amount off both groups
    expected = [[weights - ramp, biases - ramp], [weights - ramp + 0.000192, biases - ramp + 0.000192],
                [weights, biases], [weights / 10, biases / 10], [weights / 100, biases / 100]]
    assert seen == [pytest.approx(row, abs=1e-12) for row in expected]


def test_an_image_with_only_crowd_regions_trains_as_an_image_without_objects(maskrcnn_sample: Path) -> None:
    """The reference keeps such images (has_valid_annotation); their empty targets give finite losses, alone
    in a batch and beside an image with objects, and a step that changes the weights."""
    import torch  # noqa: PLC0415

    from object_detection.layout import CocoLayout  # noqa: PLC0415
    from object_detection.maskrcnn import solver  # noqa: PLC0415
    from object_detection.maskrcnn.data import CocoInstances  # noqa: PLC0415
    from object_detection.maskrcnn.model import build_model  # noqa: PLC0415
    from tests.maskrcnn.conftest import SMALL_MODEL  # noqa: PLC0415

    layout = CocoLayout(maskrcnn_sample)
    dataset = CocoInstances(layout.images_dir("train"), layout.annotations("train"), train=True)
    dataset.flip = None
    image, target = dataset[0]
    empty = {**target, "boxes": target["boxes"][:0], "labels": target["labels"][:0], "masks": target["masks"][:0]}
    torch.manual_seed(0)
    model = build_model(layout.weights, SMALL_MODEL)
    optimizer = solver.build_optimizer(model, 0.02)
    model.train()
    for images, targets in (([image], [empty]), ([image, image], [empty, target])):
        before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
        losses = model([i.float() / 255 for i in images], targets)
        assert all(torch.isfinite(v) for v in losses.values()), losses
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        after = [p for p in model.parameters() if p.requires_grad]
        assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert losses["loss_mask"] > 0  # the image with objects trained the mask head too
