"""Evaluation's scoring against the path it replaced: the COCO results the evaluation wrote before
(torchvision's `paste_masks_in_image`, thresholded, encoded by pycocotools' own `mask.encode`; boxes
made x, y, w, h and rounded; all scored by pycocotools) are the results our encoding gives, one for one,
and faster-coco-eval on ours gives pycocotools' AP on theirs; the background scorer returns each epoch's
result, in order, as scoring at once does.

The detections are made up on COCO-sized images (640 x 480): ground-truth objects found with jittered
boxes and blurred masks at various scores, some missed, some false positives, crowd regions, so the
AP is neither 0 nor 1 and every part of the matching counts.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faster_coco_eval")
torch = pytest.importorskip("torch")

from object_detection.maskrcnn.detections import ImageDetections  # noqa: E402
from object_detection.maskrcnn.made_up import made_up_detections  # noqa: E402
from object_detection.maskrcnn.scoring import Scorer, encode, score  # noqa: E402

pytestmark = pytest.mark.timeout(600)  # its slow tests

CATEGORIES = [1, 3, 18, 44, 62]


def _polygon(rng: np.random.Generator, width: int, height: int) -> list[float]:
    cx, cy = rng.uniform(60, width - 60), rng.uniform(60, height - 60)
    radius, sides = rng.uniform(12, 55), int(rng.integers(3, 12))
    angles = np.sort(rng.uniform(0, 2 * math.pi, sides))
    radii = radius * rng.uniform(0.6, 1.0, sides)
    return [round(float(v), 2) for a, r in zip(angles, radii, strict=True)
            for v in (cx + r * math.cos(a), cy + r * math.sin(a))]


def _bbox(flat: list[float]) -> list[float]:
    xs, ys = flat[0::2], flat[1::2]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def ground_truth(path: Path, images: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    infos, annotations = [], []
    for image_id in range(1, images + 1):
        infos.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": 640, "height": 480})
        for _ in range(int(rng.integers(1, 9))):
            flat = _polygon(rng, 640, 480)
            box = _bbox(flat)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": int(rng.choice(CATEGORIES)), "segmentation": [flat],
                                "area": box[2] * box[3] * 0.7, "bbox": box, "iscrowd": int(rng.random() < 0.05)})
    coco = {"images": infos, "annotations": annotations,
            "categories": [{"id": c, "name": f"c{c}", "supercategory": "s"} for c in CATEGORIES]}
    path.write_text(json.dumps(coco))
    return coco


def pycocotools_ap(annotations: Path, results: list[dict], iou_type: str) -> float:
    from pycocotools.coco import COCO  # noqa: PLC0415
    from pycocotools.cocoeval import COCOeval  # noqa: PLC0415

    coco = COCO(str(annotations))
    evaluator = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return float(evaluator.stats[0])


@pytest.fixture(scope="module")
def made_up(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ImageDetections]]:
    path = tmp_path_factory.mktemp("scoring") / "instances_val2017.json"
    return path, made_up_detections(ground_truth(path, images=60))


def replaced_path(image: ImageDetections) -> tuple[list[dict], list[dict]]:
    """COCO results as the evaluation wrote them before its own encoding (evaluation.py before 075457f):
    the model's boxes made x, y, w, h in float32 and rounded to 0.01, its masks pasted by torchvision,
    thresholded at 0.5 and RLE-encoded by pycocotools."""
    from pycocotools import mask as coco_mask  # noqa: PLC0415
    from torchvision.models.detection.roi_heads import paste_masks_in_image  # noqa: PLC0415

    boxes = torch.from_numpy(image.boxes).float().clone()
    pasted = paste_masks_in_image(torch.from_numpy(image.masks).float()[:, None], boxes, (image.height, image.width))
    masks = (pasted[:, 0] > 0.5).numpy().astype(np.uint8)
    boxes[:, 2:] -= boxes[:, :2]
    bbox, segm = [], []
    for k, (confidence, category) in enumerate(zip(image.scores.tolist(), image.categories.tolist(), strict=True)):
        common = {"image_id": image.image_id, "category_id": category, "score": confidence}
        bbox.append({**common, "bbox": [round(float(x), 2) for x in boxes[k]]})
        rle = coco_mask.encode(np.asfortranarray(masks[k]))
        segm.append({**common, "segmentation": {**rle, "counts": rle["counts"].decode("ascii")}})
    return bbox, segm


def on_the_edges() -> ImageDetections:
    """Boxes on the image's edges and corners, across it, a sliver and a box of one pixel."""
    rng = np.random.default_rng(3)
    edges = np.array([[0, 0, 90, 70], [550, 400, 640, 480], [0, 200, 640, 260], [600, 0, 640, 480],
                      [300, 300, 300.4, 300.6], [10, 10, 11, 11]], dtype=np.float32)
    return ImageDetections(1000, 480, 640, edges, np.linspace(0.9, 0.4, len(edges), dtype=np.float32),
                           np.full(len(edges), CATEGORIES[0]), rng.random((len(edges), 28, 28)).astype(np.float16))


@pytest.fixture(scope="module")
def replaced(made_up) -> dict[int, tuple[list[dict], list[dict]]]:
    """The replaced path's results of each made-up image (and of the one on the edges), by image id."""
    _, found = made_up
    return {image.image_id: replaced_path(image) for image in [*found, on_the_edges()] if len(image.boxes)}


def test_our_results_are_the_replaced_paths_one_for_one(made_up, replaced) -> None:
    """Boxes to the 0.01 px, RLE counts to the byte: pycocotools' own encoding of torchvision's paste."""
    _, found = made_up
    images = [d for d in [*found, on_the_edges()] if len(d.boxes)]
    for image in images:
        assert encode([image]).results() == replaced[image.image_id], image.image_id
    assert sum(len(image.boxes) for image in images) > 250


def test_faster_coco_eval_on_our_encoding_gives_pycocotools_ap_on_the_replaced_path(made_up, replaced) -> None:
    annotations, found = made_up
    bbox = [r for image in found if len(image.boxes) for r in replaced[image.image_id][0]]
    segm = [r for image in found if len(image.boxes) for r in replaced[image.image_id][1]]
    reference = {"BBOX": pycocotools_ap(annotations, bbox, "bbox"), "SEGM": pycocotools_ap(annotations, segm, "segm")}
    assert 0.3 < reference["BBOX"] < 0.9 and 0.05 < reference["SEGM"] < 0.9, reference  # a real test of matching
    assert score(annotations, [encode(found)]) == pytest.approx(reference, abs=1e-4)


def test_an_image_without_detections_adds_nothing(made_up) -> None:
    annotations, found = made_up
    empty = ImageDetections(found[0].image_id, 480, 640, np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                            np.zeros(0, np.int64), np.zeros((0, 28, 28), np.float16))
    assert score(annotations, [encode([empty, *found[1:]])]) == score(annotations, [encode([empty]),
                                                                                      encode(found[1:])])
    assert score(annotations, [encode([empty])]) == {"BBOX": 0.0, "SEGM": 0.0}


@pytest.mark.slow
def test_the_background_scorer_returns_each_epoch_in_order_as_scoring_at_once_does(made_up) -> None:
    annotations, found = made_up
    epochs = {1: found[:20], 2: found, 3: found[20:]}
    at_once = Scorer(annotations, processes=0)
    background = Scorer(annotations, processes=2, images_per_task=7)
    try:
        background.warm_up()
        for epoch, images in epochs.items():
            at_once.submit(epoch, images)
            background.submit(epoch, images)
        expected = at_once.finished()
        assert [e for e, _ in expected] == [1, 2, 3] and len({a["SEGM"] for _, a in expected}) == 3
        assert background.finished(wait=True) == expected
        assert background.pending == 0 and background.finished() == []
    finally:
        background.close()


def test_a_run_logs_the_scored_epochs_in_order_up_to_the_first_on_target() -> None:
    from object_detection.maskrcnn.evaluation import until_target  # noqa: PLC0415

    below, bbox_only, on = {"BBOX": 0.30, "SEGM": 0.30}, {"BBOX": 0.40, "SEGM": 0.30}, {"BBOX": 0.38, "SEGM": 0.34}
    assert until_target([(3, below), (4, bbox_only), (5, on), (6, on)]) == ([(3, below), (4, bbox_only), (5, on)], 5)
    assert until_target([(3, below), (4, bbox_only)]) == ([(3, below), (4, bbox_only)], None)
    assert until_target([]) == ([], None)


@pytest.mark.slow
def test_the_pool_ends_with_a_trainer_killed_without_a_word(made_up, tmp_path: Path) -> None:
    import signal  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    psutil = pytest.importorskip("psutil")
    from tests.conftest import REPO_ROOT  # noqa: PLC0415

    annotations, _ = made_up
    code = (f"from pathlib import Path\nfrom object_detection.maskrcnn.scoring import Scorer\n"
            f"s = Scorer(Path({str(annotations)!r}), processes=2)\ns.warm_up()\nprint('ready', flush=True)\n"
            f"import time\ntime.sleep(600)\n")
    trainer = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    assert trainer.stdout is not None and trainer.stdout.readline().strip() == "ready"
    pool = psutil.Process(trainer.pid).children(recursive=True)
    assert len(pool) >= 2
    trainer.send_signal(signal.SIGKILL)
    trainer.wait(timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in pool):
        time.sleep(0.5)
    assert not [p.pid for p in pool if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
