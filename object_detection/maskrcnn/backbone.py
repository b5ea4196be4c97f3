"""The ResNet-50 weights Mask R-CNN can start from, as torchvision ResNets with frozen BatchNorm.

- `torchvision`: torchvision's ImageNet state_dict (`resnet50-0676ba61.pth`): RGB 0-1 input with
  ImageNet mean and std, stride in the 3x3 conv, BatchNorm eps 1e-5. An open-division backbone.
- `caffe2`: the reference's `R-50.pkl` (Detectron's conversion of MSRA's Caffe ResNet-50), a pickle of
  numpy blobs (`conv1_w`, `res_conv1_bn_s`, `res2_0_branch2a_w`, `res2_0_branch1_bn_b`, ..., optionally
  inside {"blobs": ...}): stride in the 1x1 conv, BGR 0-255 input minus the Caffe pixel mean with std 1,
  and affine channels (`_s`, `_b`), i.e. frozen BatchNorm with mean 0, variance 1 and eps 0, as the
  reference's FrozenBatchNorm2d computes it. conv1's input channels are reversed on load and the input
  is scaled to 0-255 by the normalisation, so the model's RGB 0-1 images meet these weights exactly
  as the reference's BGR images do. The pickle is read with an unpickler that builds numpy arrays only.

API: `load(kind, path) -> Backbone` (the ResNet, and the image mean/std its weights expect);
`WeightsError` names the file and what was expected.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.models import ResNet, resnet50
from torchvision.ops.misc import FrozenBatchNorm2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE2_PIXEL_MEAN_BGR = (102.9801, 115.9465, 122.7717)  # maskrcnn-benchmark's INPUT.PIXEL_MEAN
_CAFFE2_BLOB = re.compile(r"res(?P<stage>[2-5])_(?P<block>\d+)_branch(?P<branch>1|2[abc])(?P<bn>_bn)?_(?P<kind>[wsb])")
_STEM = {"conv1_w": "conv1.weight", "res_conv1_bn_s": "bn1.weight", "res_conv1_bn_b": "bn1.bias"}
# What a pickle of numpy arrays needs (numpy 2 renamed numpy.core to numpy._core; protocol 2 written
# by Python 3 spells bytes as _codecs.encode).
_NUMPY_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), *(
    (f"{package}.multiarray", name) for package in ("numpy.core", "numpy._core")
    for name in ("_reconstruct", "scalar"))}


class WeightsError(RuntimeError):
    """The backbone weights file is missing or does not fit ResNet-50."""


@dataclass(frozen=True)
class Backbone:
    resnet: ResNet
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]


def _load_into(resnet: ResNet, state: dict[str, torch.Tensor], path: Path, *, statistics: bool) -> None:
    """Load `state`; every conv and BatchNorm tensor must be there (the running statistics if `statistics`)."""
    try:
        missing, unexpected = resnet.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of the wrong shape
        raise WeightsError(f"{path}: not ResNet-50 weights ({error})") from error
    # FrozenBatchNorm2d has no num_batches_tracked; the classifier is not part of the backbone.
    unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
    missing = [k for k in missing if not k.startswith("fc.")
               and (statistics or not k.endswith(("running_mean", "running_var")))]
    if missing or unexpected:
        raise WeightsError(f"{path}: not ResNet-50 weights (missing {missing[:3]}, unexpected {unexpected[:3]})")


def _torchvision(path: Path) -> Backbone:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError, pickle.UnpicklingError) as error:
        raise WeightsError(f"{path}: not a torch state_dict ({error})") from error
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a ResNet-50 state_dict, found {type(state).__name__}")
    resnet = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    _load_into(resnet, state, path, statistics=True)
    return Backbone(resnet, IMAGENET_MEAN, IMAGENET_STD)


class _NumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not part of a Caffe2 weights pickle")
        return super().find_class(module, name)


def caffe2_name(blob: str) -> str | None:
    """torchvision's ResNet key for a Caffe2 blob name; None for the blobs a backbone does not use.

    Like the reference, unused blobs are ignored (the ImageNet classifier `fc1000_*`, `conv1_b`,
    `*_momentum`); a file that lacks a ResNet-50 tensor is refused when it is loaded.
    """
    if blob in _STEM:
        return _STEM[blob]
    match = _CAFFE2_BLOB.fullmatch(blob)
    if match is None:
        return None
    where = f"layer{int(match['stage']) - 1}.{int(match['block'])}"
    branch, kind = match["branch"], match["kind"]
    if branch == "1":
        module = "downsample.1" if match["bn"] else "downsample.0"
    else:
        module = f"{'bn' if match['bn'] else 'conv'}{'abc'.index(branch[1]) + 1}"
    if (kind == "w") == bool(match["bn"]):  # convs have _w, affine channels _s and _b
        return None
    return f"{where}.{module}.{'bias' if kind == 'b' else 'weight'}"


def _caffe2_blobs(path: Path) -> dict[str, np.ndarray]:
    try:
        with path.open("rb") as f:
            data = _NumpyUnpickler(f, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as error:
        raise WeightsError(f"{path}: not a Caffe2 weights pickle ({error})") from error
    blobs = data.get("blobs", data) if isinstance(data, dict) else None
    if not isinstance(blobs, dict):
        raise WeightsError(f"{path}: expected a dict of numpy blobs, found {type(data).__name__}")
    return blobs


def _caffe2(path: Path) -> Backbone:
    state: dict[str, torch.Tensor] = {}
    for blob, value in _caffe2_blobs(path).items():
        if (key := caffe2_name(str(blob))) is not None:
            try:
                state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
            except (TypeError, ValueError) as error:
                raise WeightsError(f"{path}: blob {blob!r} is not a numeric array ({error})") from error
    if "conv1.weight" in state:
        state["conv1.weight"] = state["conv1.weight"].flip(1)  # BGR filters for RGB input
    resnet = resnet50(weights=None, norm_layer=partial(FrozenBatchNorm2d, eps=0.0))
    for layer in (resnet.layer2, resnet.layer3, resnet.layer4):  # MSRA: the stride is in the 1x1 conv
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
    _load_into(resnet, state, path, statistics=False)
    rgb_mean = tuple(m / 255 for m in reversed(CAFFE2_PIXEL_MEAN_BGR))
    return Backbone(resnet, rgb_mean, (1 / 255, 1 / 255, 1 / 255))


def load(kind: str, path: Path) -> Backbone:
    if not path.is_file():
        raise WeightsError(f"{path}: ResNet-50 weights ({kind}) not found (prepare the dataset first)")
    return _caffe2(path) if kind == "caffe2" else _torchvision(path)
