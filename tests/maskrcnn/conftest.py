"""Fixtures for the Mask R-CNN benchmark and the MLPerf machinery it shares with GNMT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def driver_env() -> dict[str, str]:
    """Environment for child processes that import the project from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def start_driver(args: list[str], env: dict[str, str], *, module: str) -> subprocess.Popen[str]:
    """Start common.run_and_time's main for a benchmark whose training is `module`."""
    code = (
        "import sys\n"
        "from common import run_and_time as rt\n"
        f"bench = rt.Benchmark('maskrcnn', 'OBJECT_DETECTION', {module!r}, '3.1.0')\n"
        "parser = rt.build_parser(bench, 'test')\n"
        "args, extra = parser.parse_known_args()\n"
        "sys.exit(rt.main(bench, args, extra))\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# Test-only model settings for the ~160 x 120 px sample images: small inputs, trimmed inference,
# few RoIs for the box and mask heads (the mask head dominates an iteration's cost on a CPU).
SMALL = ["--min-size", "128", "--max-size", "192", "--test-proposals", "100", "--detections-per-image", "20",
         "--roi-samples", "64", "--loader-workers", "0"]


def _calibrate_batchnorm(weights: Path, images_dir: Path) -> None:
    """Give the sample's random ResNet-50 BatchNorm statistics measured on the sample images.

    Training freezes every BatchNorm, as the reference does; with random weights and identity
    statistics the activations grow through the 16 blocks and the loss diverges, while with
    measured statistics the frozen network behaves like a pre-trained one.
    """
    import torch  # noqa: PLC0415 - only the training fixtures need torch
    from PIL import Image  # noqa: PLC0415
    from torchvision.models import resnet50  # noqa: PLC0415
    from torchvision.transforms import functional  # noqa: PLC0415

    model = resnet50(weights=None)
    model.load_state_dict(torch.load(weights, weights_only=True))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the calibration batch
    batch = []
    for path in sorted(images_dir.glob("*.jpg"))[:16]:
        with Image.open(path) as picture:
            image = functional.pil_to_tensor(picture.convert("RGB")).float() / 255
        image = functional.resize(image, [128, 160], antialias=True)
        batch.append(functional.normalize(image, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
    model.train()
    with torch.no_grad():
        model(torch.stack(batch))
    torch.save(model.state_dict(), weights)


@pytest.fixture(scope="session")
def maskrcnn_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample dataset (object_detection.sample) with calibrated backbone statistics."""
    from object_detection.layout import CocoLayout  # noqa: PLC0415
    from object_detection.sample import build_sample  # noqa: PLC0415

    data_dir = tmp_path_factory.mktemp("maskrcnn-sample")
    layout: CocoLayout = build_sample(data_dir, seed=0)
    _calibrate_batchnorm(layout.weights, layout.images_dir("train"))
    return data_dir
