"""The reference's Caffe2 R-50.pkl layout, loaded from a pickle of that format written here.

Detectron's R-50.pkl holds numpy blobs named after MSRA's Caffe layers; the blob names and shapes
below are written from that layout (not from the loader's mapping), with random values.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # torch

STAGES = {2: (3, 64, 256), 3: (4, 128, 512), 4: (6, 256, 1024), 5: (3, 512, 2048)}  # blocks, width, out
BGR_MEAN = np.array([102.9801, 115.9465, 122.7717], dtype=np.float32)


def caffe2_blobs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def conv(out: int, inp: int, k: int) -> np.ndarray:
        return (rng.standard_normal((out, inp, k, k)) * np.sqrt(2 / (inp * k * k))).astype(np.float32)

    def affine(prefix: str, n: int) -> dict[str, np.ndarray]:
        return {f"{prefix}_bn_s": rng.uniform(0.5, 1.5, n).astype(np.float32),
                f"{prefix}_bn_b": rng.uniform(-0.1, 0.1, n).astype(np.float32)}

    blobs = {"conv1_w": conv(64, 3, 7), "conv1_b": np.zeros(64, np.float32), **affine("res_conv1", 64),
             "fc1000_w": rng.standard_normal((1000, 2048)).astype(np.float32), "fc1000_b": np.zeros(1000, np.float32)}
    channels = 64
    for stage, (blocks, width, out) in STAGES.items():
        for block in range(blocks):
            name = f"res{stage}_{block}"
            blobs[f"{name}_branch2a_w"] = conv(width, channels, 1)
            blobs[f"{name}_branch2b_w"] = conv(width, width, 3)
            blobs[f"{name}_branch2c_w"] = conv(out, width, 1)
            for branch, n in (("2a", width), ("2b", width), ("2c", out)):
                blobs.update(affine(f"{name}_branch{branch}", n))
            if block == 0:
                blobs[f"{name}_branch1_w"] = conv(out, channels, 1)
                blobs.update(affine(f"{name}_branch1", out))
                blobs[f"{name}_branch1_w_momentum"] = np.zeros_like(blobs[f"{name}_branch1_w"])
            channels = out
    return blobs


def write_pickle(path: Path, blobs: dict) -> Path:
    with path.open("wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    return path


@pytest.fixture(scope="module")
def caffe2(tmp_path_factory: pytest.TempPathFactory):
    from object_detection.maskrcnn import backbone  # noqa: PLC0415

    blobs = caffe2_blobs()
    path = write_pickle(tmp_path_factory.mktemp("caffe2") / "R-50.pkl", blobs)
    return blobs, path, backbone.load("caffe2", path)


def test_every_blob_lands_in_the_resnet_and_the_affine_channels_are_eps_free_frozen_batchnorm(caffe2) -> None:
    import torch  # noqa: PLC0415

    blobs, _, loaded = caffe2
    resnet = loaded.resnet
    assert torch.equal(resnet.layer3[2].conv2.weight, torch.from_numpy(blobs["res4_2_branch2b_w"]))
    assert torch.equal(resnet.layer1[0].downsample[0].weight, torch.from_numpy(blobs["res2_0_branch1_w"]))
    assert torch.equal(resnet.layer4[0].downsample[1].bias, torch.from_numpy(blobs["res5_0_branch1_bn_b"]))
    assert torch.equal(resnet.bn1.weight, torch.from_numpy(blobs["res_conv1_bn_s"]))
    x = torch.randn(1, 64, 5, 5)
    scale, shift = (torch.from_numpy(blobs[f"res_conv1_bn_{k}"]).view(1, -1, 1, 1) for k in "sb")
    assert torch.allclose(resnet.bn1(x), x * scale + shift, rtol=0, atol=1e-6)  # variance 1, eps 0


def test_a_first_block_has_its_stride_in_the_1x1_conv_as_msra_resnets(caffe2) -> None:
    import torch  # noqa: PLC0415
    from torch.nn import functional  # noqa: PLC0415

    blobs, _, loaded = caffe2
    block = loaded.resnet.layer2[0]
    x = torch.randn(1, 256, 16, 16)

    def affine(tensor: torch.Tensor, prefix: str) -> torch.Tensor:
        s, b = (torch.from_numpy(blobs[f"{prefix}_bn_{k}"]).view(1, -1, 1, 1) for k in "sb")
        return tensor * s + b

    def w(name: str) -> torch.Tensor:
        return torch.from_numpy(blobs[name])

    # Caffe2's bottleneck, written out: 1x1 stride 2, 3x3 stride 1, 1x1; shortcut 1x1 stride 2.
    y = functional.relu(affine(functional.conv2d(x, w("res3_0_branch2a_w"), stride=2), "res3_0_branch2a"))
    y = functional.relu(affine(functional.conv2d(y, w("res3_0_branch2b_w"), padding=1), "res3_0_branch2b"))
    y = affine(functional.conv2d(y, w("res3_0_branch2c_w")), "res3_0_branch2c")
    shortcut = affine(functional.conv2d(x, w("res3_0_branch1_w"), stride=2), "res3_0_branch1")
    with torch.no_grad():
        assert torch.allclose(block(x), functional.relu(y + shortcut), atol=1e-4)


def test_rgb_images_meet_the_weights_as_bgr_0_255_minus_the_caffe_mean(caffe2) -> None:
    import torch  # noqa: PLC0415
    from torch.nn import functional  # noqa: PLC0415

    from object_detection.maskrcnn.config import ModelOptions  # noqa: PLC0415
    from object_detection.maskrcnn.model import build_model  # noqa: PLC0415

    blobs, path, _ = caffe2
    model = build_model(path, ModelOptions(backbone="caffe2", fold_frozen_bn=False)).eval()  # conv1 alone
    rgb = torch.randint(0, 256, (3, 40, 48), dtype=torch.uint8)
    bgr_input = rgb.flip(0).float() - torch.from_numpy(BGR_MEAN).view(3, 1, 1)  # the reference's input
    expected = functional.conv2d(bgr_input[None], torch.from_numpy(blobs["conv1_w"]), stride=2, padding=3)
    with torch.no_grad():
        ours = model.backbone.body.conv1(model.transform.normalize(rgb.float() / 255)[None])
    assert torch.allclose(ours, expected, rtol=1e-4, atol=1e-2)


def test_a_pickle_without_a_resnet_blob_or_with_foreign_code_is_refused_naming_the_file(tmp_path: Path) -> None:
    from object_detection.maskrcnn import backbone  # noqa: PLC0415

    blobs = caffe2_blobs()
    del blobs["res4_3_branch2b_w"]
    short = write_pickle(tmp_path / "short.pkl", blobs)
    with pytest.raises(backbone.WeightsError, match=rf"{short}: not ResNet-50 weights \(missing \['layer3.3.conv2"):
        backbone.load("caffe2", short)

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(pickle.dumps({"blobs": {"conv1_w": Payload()}}, protocol=2))
    refused = rf"{hostile}: not a Caffe2 weights pickle \(global \S+system is not part"
    with pytest.raises(backbone.WeightsError, match=refused):
        backbone.load("caffe2", hostile)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(backbone.WeightsError, match=r"R-50.pkl: ResNet-50 weights \(caffe2\) not found"):
        backbone.load("caffe2", tmp_path / "R-50.pkl")
