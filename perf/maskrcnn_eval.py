"""Mask R-CNN evaluation: the background scorer against the pycocotools path it replaced, same detections.

    python perf/maskrcnn_eval.py [--images 500] [--detections 20] [--processes 2]

The ground truth is the COCO-sized sample's val split (object_detection.sample.COCO_SIZED: 640 x 480
and the like, 2-12 objects per image), written to a temporary folder; the detections are made up from it
(most objects found with jittered boxes, 28 x 28 soft masks, false positives up to `--detections` per
image). Timed from the detections in memory to the two APs:
- "pycocotools": what evaluation did before: every mask pasted into its image by torchvision (as the
  model's postprocess did), RLE-encoded one by one with pycocotools, scored by pycocotools' COCOeval;
- "ours, in the trainer": scoring.encode (per image, one thread) and faster-coco-eval, in this process;
- "ours, background": scoring.Scorer with `--processes` pool processes, submit to result (what rank 0
  waits for at most; the training does not wait at all).
Prints seconds, images/s, the ratios and both APs (they must agree to 1e-4).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from object_detection.layout import CocoLayout  # noqa: E402
from object_detection.maskrcnn.detections import ImageDetections  # noqa: E402
from object_detection.maskrcnn.made_up import made_up_detections  # noqa: E402
from object_detection.maskrcnn.scoring import Scorer, encode, score  # noqa: E402
from object_detection.sample import COCO_SIZED, build_split  # noqa: E402


def pycocotools_path(annotations: Path, found: list[ImageDetections]) -> dict[str, float]:
    """The evaluation before faster-coco-eval: per-mask paste results, per-mask encode, pycocotools."""
    import torch  # noqa: PLC0415
    from pycocotools import mask as coco_mask  # noqa: PLC0415
    from pycocotools.coco import COCO  # noqa: PLC0415
    from pycocotools.cocoeval import COCOeval  # noqa: PLC0415
    from torchvision.models.detection.roi_heads import paste_masks_in_image  # noqa: PLC0415

    bbox, segm = [], []
    for image in found:
        pasted = paste_masks_in_image(torch.from_numpy(image.masks).float()[:, None], torch.from_numpy(image.boxes),
                                      (image.height, image.width))
        masks = (pasted[:, 0] > 0.5).numpy().astype(np.uint8)
        boxes = image.boxes.astype(np.float64)
        boxes[:, 2:] -= boxes[:, :2]
        for k in range(len(boxes)):
            common = {"image_id": image.image_id, "category_id": int(image.categories[k]),
                      "score": float(image.scores[k])}
            bbox.append({**common, "bbox": [round(float(x), 2) for x in boxes[k]]})
            rle = coco_mask.encode(np.asfortranarray(masks[k]))
            rle["counts"] = rle["counts"].decode("ascii")
            segm.append({**common, "segmentation": rle})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(annotations))
        accuracy = {}
        for key, iou_type, results in (("BBOX", "bbox", bbox), ("SEGM", "segm", segm)):
            evaluator = COCOeval(coco, coco.loadRes(results), iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            accuracy[key] = float(evaluator.stats[0])
    return accuracy


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--detections", type=int, default=20, help="detections per image (true ones, then made up)")
    p.add_argument("--processes", type=int, default=2, help="the background scorer's pool")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="maskrcnn-eval-perf-") as tmp:
        layout = CocoLayout(Path(tmp))
        build_split(layout, "val", args.images, random.Random("perf-val"), COCO_SIZED)
        annotations = layout.annotations("val")
        coco = json.loads(annotations.read_text())
        found = made_up_detections(coco, per_image=args.detections)
        count = sum(len(d.boxes) for d in found)
        scorer = Scorer(annotations, args.processes)

        def epoch(number: int) -> dict[str, float]:
            scorer.submit(number, found)
            return scorer.finished(wait=True)[0][1]

        try:
            scorer.warm_up()
            background, _ = _timed(lambda: epoch(1))
            # The pool has read the annotations now; a second epoch is what a run sees from epoch 2 on.
            background2, ours_background = _timed(lambda: epoch(2))
        finally:
            scorer.close()
        inline, ours = _timed(lambda: score(annotations, [encode(found)]))
        before, reference = _timed(lambda: pycocotools_path(annotations, found))
    print(f"Mask R-CNN evaluation, CPU, {args.images} COCO-sized images, {count} detections "
          f"({count / args.images:.0f} per image)")
    print(f"  pycocotools path       : {before:7.2f} s ({args.images / before:6.1f} images/s)")
    print(f"  ours, in the trainer   : {inline:7.2f} s ({args.images / inline:6.1f} images/s), "
          f"{before / inline:.1f}x")
    print(f"  ours, background ({args.processes} p.): {background2:7.2f} s "
          f"({args.images / background2:6.1f} images/s), {before / background2:.1f}x "
          f"(first epoch, annotations read: {background:.2f} s)")
    print(f"  AP pycocotools {reference}, ours {ours}, background {ours_background}")
    worst = max(abs(reference[k] - v) for k, v in ours.items())
    print(f"  largest AP difference: {worst:.2e} ({'identical to 1e-4' if worst <= 1e-4 else 'DIFFERENT'})")
    return 0 if worst <= 1e-4 and not math.isnan(worst) else 1


if __name__ == "__main__":
    sys.exit(main())
