"""The shipped trainer on the sample, end to end: `run_and_time --sample` reaches the target with a log
the 3.1.0 checker passes, a run SIGKILLed mid-epoch resumes with its weights and optimizer state,
and under autocast the model it trained decodes its boxes in fp32.

One sample run is shared by the three. It keeps its checkpoint after epoch 1 (the state every run with
its seed saves there) and after epoch 2, the state the resumed run must reach at the end of epoch 2.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.mlperf import compliance
from object_detection.run_and_time import SAMPLE_TRAINING_ARGS
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(1800)]

SEED = 1


@dataclass(frozen=True)
class SampleRun:
    code: int
    out: str
    log: Path
    checkpoint: Path
    after_epoch_1: Path
    after_epoch_2: Path


def events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG " in line]


@pytest.fixture(scope="module")
def sample_run(maskrcnn_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> SampleRun:
    home = tmp_path_factory.mktemp("sample-run")
    checkpoint = home / "checkpoint.pth"
    after = {epoch: home / f"after-epoch-{epoch}.pth" for epoch in (1, 2)}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "object_detection.run_and_time", "--sample", "--seed", str(SEED),
         "--data-dir", str(maskrcnn_sample), "--results-dir", str(home / "results"), "--checkpoint", str(checkpoint)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    out = []
    for line in proc.stdout:
        out.append(line)
        if '"key": "eval_start"' in line:  # the epoch's checkpoint is saved before its evaluation
            epoch = json.loads(line.split(":::MLLOG ", 1)[1])["metadata"]["epoch_num"]
            if epoch in after:
                shutil.copy(checkpoint, after[epoch])
    proc.wait(timeout=60)
    print(f"sample run: {time.monotonic() - started:.0f} s")
    log = home / "results" / "local" / "maskrcnn" / "result_0.txt"
    return SampleRun(proc.returncode, "".join(out), log, checkpoint, after[1], after[2])


def test_the_sample_run_reaches_the_target_and_its_log_passes_the_checker(sample_run: SampleRun) -> None:
    assert sample_run.code == 0, sample_run.out[-3000:]
    assert "compliance (3.1.0): PASSED" in sample_run.out
    assert compliance.check_log(sample_run.log, "3.1.0").passed
    logged = events(sample_run.log)
    keys = [e["key"] for e in logged]
    # The cache is flushed before the clock, and the dataset is opened only after it starts.
    assert logged[keys.index("cache_clear")]["value"] is True and keys.index("cache_clear") < keys.index("init_start")
    assert keys.index("init_stop") < keys.index("run_start") < keys.index("train_samples")
    assert logged[keys.index("train_samples")]["value"] == 48
    # With margin: on target by epoch 3 of at most 4 (seeds 1-3 on one and two workers reached it by epoch 2 or 3).
    accuracy_lines = [k for k, e in enumerate(logged) if e["key"] == "eval_accuracy"]
    scored = [logged[k]["metadata"]["epoch_num"] for k in accuracy_lines]
    final = logged[accuracy_lines[-1]]["value"]
    assert final["BBOX"] >= 0.377 and final["SEGM"] >= 0.339
    assert scored == list(range(1, len(scored) + 1)) and len(scored) <= 3, scored
    # Epoch 1 was scored in the background while epoch 2 trained, and its line keeps its epoch.
    epoch_2 = [k for k, e in enumerate(logged) if e["key"] in ("epoch_start", "epoch_stop")
               and e["metadata"]["epoch_num"] == 2]
    assert epoch_2[0] < accuracy_lines[0] < epoch_2[1]
    division = next(e for e in logged if e["key"] == "submission_division")
    assert division["value"] == "open" and "--min-size 128 --max-size 192 (fixed at 800/1333)" in " ".join(
        division["metadata"]["open_because"])
    assert "maskrcnn: division open: --backbone torchvision" in sample_run.out  # said on the console too
    assert logged[-1]["key"] == "run_stop" and logged[-1]["metadata"]["status"] == "success"


def _state(path: Path) -> dict:
    import torch  # noqa: PLC0415

    return torch.load(path, map_location="cpu", weights_only=True)


def test_a_run_killed_mid_epoch_resumes_with_its_weights_and_optimizer_state(
        sample_run: SampleRun, maskrcnn_sample: Path, tmp_path: Path) -> None:
    import torch  # noqa: PLC0415

    reference = _state(sample_run.after_epoch_2)  # the uninterrupted run, after epoch 2
    assert reference["epoch"] == 2
    ckpt = tmp_path / "checkpoint.pth"
    shutil.copy(sample_run.after_epoch_1, ckpt)
    command = [sys.executable, "-m", "object_detection.maskrcnn.train", "--data-dir", str(maskrcnn_sample),
               "--seed", str(SEED), "--checkpoint", str(ckpt), *SAMPLE_TRAINING_ARGS, "--max-epochs", "2"]
    killed = subprocess.Popen([*command, "--log-file", str(tmp_path / "killed.txt")], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert killed.stdout is not None
    for line in killed.stdout:
        if '"key": "epoch_start"' in line:
            break
    time.sleep(5)  # a few iterations into epoch 2
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    keys = [e["key"] for e in events(tmp_path / "killed.txt")]
    assert keys[-1] != "run_stop" and "epoch_stop" not in keys  # died in epoch 2, no last word
    after_epoch_1 = _state(ckpt)
    assert after_epoch_1["epoch"] == 1

    resumed = subprocess.run([*command, "--log-file", str(tmp_path / "resumed.txt")], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=900, check=False)
    assert resumed.returncode in (0, 3), resumed.stderr[-3000:]  # epoch 2 on target or not: it ends there
    logged = events(tmp_path / "resumed.txt")
    assert next(e for e in logged if e["key"] == "run_start")["metadata"]["resumed_from_epoch"] == 1
    assert [e["metadata"]["epoch_num"] for e in logged if e["key"] == "epoch_start"] == [2]
    final = _state(ckpt)
    assert final["epoch"] == 2 and final["iteration"] == reference["iteration"]
    # Epoch 2 started from the saved weights, momentum buffers and schedule position: it ends where
    # the uninterrupted run ended. Training on without any of them would not.
    for name, tensor in reference["model"].items():
        assert torch.allclose(final["model"][name], tensor, rtol=1e-4, atol=1e-6), name
    momentum = {k: v["momentum_buffer"] for k, v in reference["optimizer"]["state"].items()}
    assert momentum and all(torch.allclose(final["optimizer"]["state"][k]["momentum_buffer"], v, rtol=1e-4, atol=1e-6)
                            for k, v in momentum.items())
    assert final["scheduler"]["last_epoch"] == reference["scheduler"]["last_epoch"]
    moved = max((final["model"][n] - after_epoch_1["model"][n]).abs().max().item() for n in reference["model"])
    assert moved > 1e-3  # epoch 2 changed the weights: the equality above is not the epoch-1 state twice


def test_autocast_hands_the_box_regressions_on_in_fp32_so_far_boxes_decode_where_fp32_puts_them(
        sample_run: SampleRun, maskrcnn_sample: Path) -> None:
    """bf16, the half precision a CPU autocasts to, steps by 8-16 px between 2048 and 4096: a box decoded in it, as
    torchvision decodes under autocast, misses by that much far from the origin (on a 2600-px mosaic of the sample
    that cost 0.07-0.15 AP; decoded in fp32, the AP stayed within 0.01 of an fp32 evaluation). The model's hooks
    hand the RPN head's and the box predictor's regressions on in fp32, so their decoding runs in fp32. Checked on
    the trained weights with proposals at 2000-2600 px, without a bf16 pass of the backbone over such an image
    (a quarter of an hour on a CPU without bf16 instructions)."""
    import torch  # noqa: PLC0415

    from object_detection.layout import CocoLayout  # noqa: PLC0415
    from object_detection.maskrcnn.config import ModelOptions  # noqa: PLC0415
    from object_detection.maskrcnn.model import build_model  # noqa: PLC0415

    weights = _state(sample_run.checkpoint)["model"]
    proposals = torch.tensor([[2000.0 + 37 * i, 20.0 + i, 2061.0 + 37 * i, 93.0 + i] for i in range(16)])
    features = torch.randn(16, 1024, generator=torch.Generator().manual_seed(0))
    feature_map = torch.randn(1, 256, 8, 8, generator=torch.Generator().manual_seed(1))

    def decode(fp32_box_decoding: bool, dtype: torch.dtype | None) -> tuple[list[torch.dtype], torch.Tensor]:
        model = build_model(CocoLayout(maskrcnn_sample).weights, ModelOptions(fp32_box_decoding=fp32_box_decoding))
        model.load_state_dict(weights)
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            _, deltas = model.roi_heads.box_predictor(features)
            _, rpn_deltas = model.rpn.head([feature_map])
            boxes = model.roi_heads.box_coder.decode(deltas, [proposals])
        return [deltas.dtype, rpn_deltas[0].dtype], boxes.float()

    _, exact = decode(True, None)
    kept_dtypes, kept = decode(True, torch.bfloat16)
    half_dtypes, half = decode(False, torch.bfloat16)
    assert kept_dtypes == [torch.float32] * 2 and half_dtypes == [torch.bfloat16] * 2
    assert (kept - exact).abs().max() < 0.5, (kept - exact).abs().max()
    assert (half - exact).abs().max() >= 4, (half - exact).abs().max()  # the check can fail
