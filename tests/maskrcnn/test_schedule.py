"""The Mask R-CNN schedule and division, read through the trainer's --dry-run (no torch, no data)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from object_detection.maskrcnn import train
from object_detection.maskrcnn.schedule import MAX_EPOCHS, RULESET, schedule_for
from tests.conftest import REPO_ROOT

RCP_FILE = resources.files("mlperf_logging") / "rcp_checker" / f"training_{RULESET}" / "rcps_maskrcnn.json"
RCPS = {row["BS"]: row for row in json.loads(RCP_FILE.read_text()).values()}


def dry_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[dict[str, dict], str]:
    """The logged events by key, and the lines for people (the division's, then the configuration's)."""
    assert train.main(["--dry-run", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    events = {e["key"]: e for e in (json.loads(line.split(":::MLLOG ", 1)[1]) for line in lines if ":::MLLOG " in line)}
    return events, "\n".join(line for line in lines if line.startswith("maskrcnn --dry-run: "))


def workers_for(batch: int) -> int:
    """NVIDIA's layout for the RCP: 8 GPUs up to batch 128, else 8 images per GPU."""
    return 8 if batch <= 128 else batch // 8


def test_the_rcp_table_has_every_batch_the_reference_ran() -> None:
    assert sorted(RCPS) == [8, 48, 64, 96, 128, 256, 272]


@pytest.mark.parametrize("batch", sorted(RCPS))
def test_every_reference_convergence_point_is_logged_as_the_reference_ran_it(
        batch: int, capsys: pytest.CaptureFixture[str]) -> None:
    hp = RCPS[batch]["Hyperparams"]
    workers = workers_for(batch)
    events, words = dry_run(capsys, "--global-batch-size", str(batch), "--workers", str(workers),
                            "--backbone", "caffe2")
    value = {key: e["value"] for key, e in events.items()}
    assert value["global_batch_size"] == batch
    assert value["opt_base_learning_rate"] == hp["opt_base_learning_rate"]
    assert value["opt_learning_rate_warmup_steps"] == hp["opt_learning_rate_warmup_steps"]
    assert value["opt_learning_rate_warmup_factor"] == hp["opt_learning_rate_warmup_factor"]
    assert events["opt_learning_rate_warmup_factor"]["metadata"]["method"] == "mlperf_linear"
    assert value["opt_learning_rate_decay_steps"] == hp["opt_learning_decay_steps"]
    assert value["opt_learning_rate_decay_factor"] == 0.1
    assert (value["min_image_size"], value["max_image_size"]) == (800, 1333)
    # 1000 proposals per image, logged as the reference logs FPN_POST_NMS_TOP_N_TRAIN: for a GPU's batch. The
    # RCP itself was measured at 1000 per image (6000 at 6 images per GPU; 1000 at batch 8 on 8 GPUs).
    images_per_worker = batch // workers
    assert f"1000 RPN proposals per training image ({1000 * images_per_worker} per worker's batch)" in words
    assert value["num_image_candidates"] == 1000 * images_per_worker
    assert hp["num_image_candidates"] % 1000 == 0
    assert value["submission_division"] == "closed"
    assert "division closed: every setting the rules fix is the reference's" in words


@pytest.mark.parametrize("batch", sorted(RCPS))
def test_at_every_rcp_batch_torchvisions_backbone_is_open_and_the_only_setting_named(
        batch: int, capsys: pytest.CaptureFixture[str]) -> None:
    events, words = dry_run(capsys, "--global-batch-size", str(batch), "--workers", str(workers_for(batch)))
    assert events["submission_division"]["value"] == "open"
    assert events["num_image_candidates"]["value"] == 1000 * (batch // workers_for(batch))
    assert words.splitlines()[0] == (
        "maskrcnn --dry-run: division open: --backbone torchvision (the reference's is R-50.pkl: --backbone caffe2)")


@pytest.mark.parametrize("batch", sorted(RCPS))
def test_rcp_warmup_ramps_from_about_zero_to_the_base_lr(batch: int) -> None:
    s = schedule_for(batch)
    assert s.learning_rate(0) <= 0.01 * s.base_lr  # 48: 800 x 9.6e-5 > 0.06, held at 0
    assert s.learning_rate(s.warmup_steps // 2) < s.learning_rate(s.warmup_steps - 1) < s.base_lr
    assert s.learning_rate(s.warmup_steps) == s.base_lr
    # The same amount comes off every group: biases (2x LR) start at about the base LR.
    assert s.learning_rate(0, 2 * s.base_lr) == pytest.approx(
        2 * s.base_lr - s.warmup_steps * s.warmup_factor, abs=1e-12)
    first, second = s.decay_steps
    assert s.learning_rate(first - 1) == s.base_lr
    assert s.learning_rate(first) == pytest.approx(0.1 * s.base_lr)
    assert s.learning_rate(second) == pytest.approx(0.01 * s.base_lr)


def test_the_run_is_ended_by_the_target_not_by_a_cap_that_cuts_off_slow_seeds(
        capsys: pytest.CaptureFixture[str]) -> None:
    slowest = max(max(row["Epochs to converge"]) for row in RCPS.values())
    assert slowest == 20 and slowest < MAX_EPOCHS
    _, words = dry_run(capsys, "--workers", "8")
    assert words.endswith(f"at most {MAX_EPOCHS} epochs")  # no iteration cap unless --max-iters


def test_the_default_is_the_batch_96_reference_point_on_8_workers(capsys: pytest.CaptureFixture[str]) -> None:
    events, words = dry_run(capsys, "--workers", "8", "--seed", "3")
    assert events["global_batch_size"]["value"] == 96
    assert events["opt_base_learning_rate"]["value"] == RCPS[96]["Hyperparams"]["opt_base_learning_rate"]
    assert events["seed"]["value"] == 3
    assert "8 worker(s) x 12 images, 1000 RPN proposals per training image (12000 per worker's batch)" in words


@pytest.mark.parametrize(("batch", "lr", "steps"), [(2, 0.0025, [480000, 640000]), (16, 0.02, [60000, 80000]),
                                                    (32, 0.04, [30000, 40000])])
def test_a_batch_without_rcp_gets_the_rules_scaling_and_the_reference_warmup(
        batch: int, lr: float, steps: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    events, _ = dry_run(capsys, "--global-batch-size", str(batch), "--workers", "1")
    assert events["opt_base_learning_rate"]["value"] == pytest.approx(lr)
    assert events["opt_learning_rate_decay_steps"]["value"] == steps
    assert events["opt_learning_rate_warmup_steps"]["value"] == 500
    assert events["opt_learning_rate_warmup_factor"]["value"] == pytest.approx(1 / 3)
    assert events["num_image_candidates"]["value"] == 1000 * batch
    s = schedule_for(batch)
    assert s.learning_rate(0) == pytest.approx(lr / 3) and s.learning_rate(250) == pytest.approx(lr * 2 / 3)


def test_options_override_the_schedule_and_are_what_is_logged(capsys: pytest.CaptureFixture[str]) -> None:
    events, words = dry_run(capsys, "--global-batch-size", "96", "--workers", "8", "--base-lr", "0.1",
                            "--warmup-steps", "10", "--warmup-method", "linear", "--warmup-factor", "0.5",
                            "--decay-steps", "100", "200", "--proposals-per-image", "1000", "--max-iters", "300")
    assert [events[k]["value"] for k in ("opt_base_learning_rate", "opt_learning_rate_warmup_steps",
                                         "opt_learning_rate_warmup_factor", "opt_learning_rate_decay_steps",
                                         "num_image_candidates")] == [0.1, 10, 0.5, [100, 200], 12000]
    assert "linear warmup" in words and "at most 300 iterations" in words


def test_the_division_is_open_with_torchvision_weights_and_closed_only_with_the_reference_backbone(
        capsys: pytest.CaptureFixture[str]) -> None:
    events, words = dry_run(capsys, "--workers", "8")
    assert events["submission_division"]["value"] == "open"
    assert "torchvision's ImageNet ResNet-50" in words
    events, words = dry_run(capsys, "--workers", "8", "--backbone", "caffe2")
    assert events["submission_division"]["value"] == "closed"
    assert "the reference's Caffe2 R-50.pkl" in words
    events, words = dry_run(capsys, "--workers", "8", "--backbone", "caffe2", "--division", "open")
    assert events["submission_division"]["value"] == "open"
    assert "division open (--division open)" in words


# Each setting the closed rules fix, set otherwise on a run that is closed without it.
NOT_THE_REFERENCES = [
    (["--min-size", "128"], "--min-size 128 --max-size 1333 (fixed at 800/1333)"),
    (["--max-size", "1000"], "--min-size 800 --max-size 1000 (fixed at 800/1333)"),
    (["--base-lr", "0.13"], "--base-lr 0.13 (0.02 x K, or 0.02 / K below batch 16)"),
    (["--decay-steps", "12000", "15000"],
     "--decay-steps 12000 15000 ((60000, 80000) x (1 + K / 10) x 16 / 96 for an integer K)"),
    (["--proposals-per-image", "500"], "--proposals-per-image 500 (the reference keeps 1000 per image)"),
    (["--test-proposals", "100"], "--test-proposals 100 (the reference keeps 1000 per image)"),
    (["--detections-per-image", "20"], "--detections-per-image 20 (the reference keeps 100)"),
    (["--roi-samples", "64"], "--roi-samples 64 (the reference samples 512 per image)"),
]


@pytest.mark.parametrize(("option", "named"), NOT_THE_REFERENCES, ids=[o[0][0] for o in NOT_THE_REFERENCES])
def test_a_closed_run_with_a_setting_not_the_references_logs_open_and_names_it(
        option: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    events, words = dry_run(capsys, "--workers", "8", "--backbone", "caffe2", *option)
    assert events["submission_division"]["value"] == "open"
    assert words.splitlines()[0] == f"maskrcnn --dry-run: division open: {named}"
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--dry-run", "--workers", "8", "--backbone", "caffe2", "--division", "closed", *option])
    assert exit_info.value.code == 2
    assert f"--division closed, but the rules fix what this run changes: {named}" in capsys.readouterr().err


def test_the_rules_scaling_of_decay_steps_and_the_rcps_own_are_closed(capsys: pytest.CaptureFixture[str]) -> None:
    """K = 0 for a batch without an RCP, K = 2 (x 1.2) for batch 96's RCP, written out."""
    for batch, steps in ((32, ["30000", "40000"]), (96, ["12000", "16000"]), (96, ["10000", "13333"])):
        events, _ = dry_run(capsys, "--global-batch-size", str(batch), "--workers", "1", "--backbone", "caffe2",
                            "--decay-steps", *steps)
        assert events["submission_division"]["value"] == "closed", (batch, steps)


@pytest.mark.parametrize(("args", "message"), [
    (["--division", "closed"], "--division closed, but the rules fix what this run changes: --backbone torchvision"),
    (["--global-batch-size", "100"], "--global-batch-size 100 does not split over 8 worker(s)"),
])
def test_options_that_make_no_run_or_a_false_division_exit_2_naming_why(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--dry-run", "--workers", "8", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_real_run_needs_data_and_seed_and_the_launched_workers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train.main(["--seed", "1"])
    assert "--data-dir and --seed are required (except with --dry-run)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--seed", "1", "--data-dir", "d", "--workers", "8"])
    assert "--workers 8, but 1 worker(s) were launched" in capsys.readouterr().err


def test_a_dry_run_touches_neither_torch_nor_the_dataset(tmp_path: Path) -> None:
    code = ("import sys\nfrom object_detection.maskrcnn import train\n"
            f"code = train.main(['--dry-run', '--data-dir', {str(tmp_path / 'data')!r}])\n"
            "print(code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 False"
    assert not (tmp_path / "data").exists()
