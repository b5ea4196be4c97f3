"""Every speed change keeps the numbers: one step's losses, gradients and updated weights with and without
it, on the sample, in float64 (in float32 rounding of 1e-7 can tip one proposal in or out of NMS, which
moves a loss by 1e-4 and some gradients by percents); and the shared annotations with torchvision.io decoding give
the targets that pycocotools and PIL give."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.maskrcnn.conftest import SMALL_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(1200)]

torch = pytest.importorskip("torch")

@dataclass
class Step:
    losses: dict[str, float]
    gradients: dict[str, torch.Tensor]
    after: dict[str, torch.Tensor]  # the parameters after the SGD step


def _batch(data_dir: Path) -> tuple:
    from object_detection.layout import CocoLayout  # noqa: PLC0415
    from object_detection.maskrcnn.data import CocoInstances, collate  # noqa: PLC0415

    layout = CocoLayout(data_dir)
    dataset = CocoInstances(layout.images_dir("train"), layout.annotations("train"), train=True)
    dataset.flip = None
    return collate([dataset[0], dataset[1]])


def _step(data_dir: Path, batch: tuple, fused: bool, **changes: bool) -> Step:
    from object_detection.layout import CocoLayout  # noqa: PLC0415
    from object_detection.maskrcnn import solver  # noqa: PLC0415
    from object_detection.maskrcnn.model import build_model  # noqa: PLC0415

    torch.manual_seed(0)
    # In float64 (boxes too), where rounding cannot tip which proposals NMS keeps and the heads sample.
    model = build_model(CocoLayout(data_dir).weights, replace(SMALL_MODEL, fp32_box_decoding=False, **changes))
    model.double()
    optimizer = solver.build_optimizer(model, 0.02, fused=fused)
    model.train()
    images, targets = batch
    targets = [{**t, "boxes": t["boxes"].double()} for t in targets]
    losses = model([i.double() / 255 for i in images], targets)
    sum(losses.values()).backward()
    # A folded convolution's weight is `<conv>.conv.weight`; the unfolded model calls it `<conv>.weight`.
    trained = {n.replace(".conv.weight", ".weight"): p for n, p in model.named_parameters() if p.requires_grad}
    gradients = {n: p.grad.clone() for n, p in trained.items()}
    optimizer.step()
    after = {n: p.detach().clone() for n, p in trained.items()}
    return Step({k: v.item() for k, v in losses.items()}, gradients, after)


@pytest.fixture(scope="module")
def baseline(maskrcnn_sample: Path) -> tuple[tuple, Step]:
    batch = _batch(maskrcnn_sample)
    return batch, _step(maskrcnn_sample, batch, fused=False, fold_frozen_bn=False, channels_last=False)


@pytest.mark.parametrize("change", [{"fused": True}, {"fold_frozen_bn": True}, {"channels_last": True}])
def test_a_speed_change_keeps_the_losses_gradients_and_update_of_a_step(
        maskrcnn_sample: Path, baseline: tuple[tuple, Step], change: dict[str, bool]) -> None:
    batch, expected = baseline
    options = {"fused": False, "fold_frozen_bn": False, "channels_last": False, **change}
    fused = options.pop("fused")
    seen = _step(maskrcnn_sample, batch, fused=fused, **options)
    assert all(v > 0.01 for v in expected.losses.values()), expected.losses
    assert seen.losses == pytest.approx(expected.losses, rel=1e-10)
    assert seen.gradients.keys() == expected.gradients.keys()
    for name, gradient in expected.gradients.items():
        assert torch.allclose(seen.gradients[name], gradient, rtol=1e-8, atol=1e-12), name
        assert torch.allclose(seen.after[name], expected.after[name], rtol=1e-10, atol=1e-14), name


def _reference_targets(images_dir: Path, annotations: Path) -> dict[int, tuple]:
    """What maskrcnn-benchmark's COCODataset reads, through a pycocotools COCO object and PIL decoding."""
    from PIL import Image  # noqa: PLC0415
    from pycocotools.coco import COCO  # noqa: PLC0415
    from torchvision.transforms.functional import pil_to_tensor  # noqa: PLC0415

    from object_detection.maskrcnn.data import decode_mask  # noqa: PLC0415

    coco = COCO(str(annotations))
    labels = {cid: i + 1 for i, cid in enumerate(sorted(coco.getCatIds()))}
    found = {}
    for image_id in sorted(coco.imgs):
        anns = coco.imgToAnns.get(image_id, [])
        if not any(all(s > 1 for s in a["bbox"][2:]) for a in anns):  # has_valid_annotation: crowd regions count
            continue
        info = coco.imgs[image_id]
        with Image.open(images_dir / info["file_name"]) as picture:
            image = pil_to_tensor(picture.convert("RGB"))
        kept = [a for a in anns if not a.get("iscrowd", 0)]
        boxes = torch.tensor([a["bbox"] for a in kept], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        masks = torch.stack([torch.from_numpy(decode_mask(a["segmentation"], info["height"], info["width"]))
                             for a in kept]) if kept else torch.zeros((0, info["height"], info["width"]),
                                                                        dtype=torch.uint8)
        found[image_id] = (image, boxes, torch.tensor([labels[a["category_id"]] for a in kept]), masks)
    return found


def test_shared_annotations_and_torchvision_decoding_give_the_pycocotools_and_pil_targets(
        maskrcnn_sample: Path, tmp_path: Path) -> None:
    """On the sample, with a crowd region, an RLE annotation, a two-polygon one and an image with only a crowd
    region added to it."""
    from object_detection.layout import CocoLayout  # noqa: PLC0415
    from object_detection.maskrcnn.data import CocoInstances  # noqa: PLC0415

    layout = CocoLayout(maskrcnn_sample)
    coco = json.loads(layout.annotations("train").read_text())
    first, second = coco["annotations"][0], coco["annotations"][1]
    rle = {"size": [coco["images"][0]["height"], coco["images"][0]["width"]], "counts": [40, 20, 100, 25, 5000]}
    coco["annotations"] += [
        {**first, "id": 900001, "iscrowd": 1, "segmentation": rle},
        {**first, "id": 900002, "iscrowd": 0, "segmentation": rle, "bbox": [0, 0, 30, 20]},
        {**second, "id": 900003, "segmentation": second["segmentation"] + first["segmentation"]},
        {**second, "id": 900004, "bbox": [5, 5, 1, 1]},  # too small to make an image usable alone
        {**first, "id": 900005, "image_id": 900000, "iscrowd": 1},  # the only one of its image
    ]
    coco["images"].append({**coco["images"][0], "id": 900000})
    annotations = tmp_path / "instances_train2017.json"
    annotations.write_text(json.dumps(coco))
    images_dir = tmp_path / "images"
    shutil.copytree(layout.images_dir("train"), images_dir, copy_function=os.link)
    dataset = CocoInstances(images_dir, annotations, train=True)
    dataset.flip = None
    reference = _reference_targets(images_dir, annotations)
    assert len(dataset) == len(reference) == 49
    for index in range(len(dataset)):
        image, target = dataset[index]
        expected_image, boxes, labels, masks = reference[int(target["image_id"])]
        assert torch.equal(image, expected_image)
        assert torch.equal(target["boxes"], boxes) and torch.equal(target["labels"], labels)
        assert torch.equal(target["masks"], masks)
