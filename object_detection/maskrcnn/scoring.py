"""COCO bbox and segm AP@[.5:.95] with faster-coco-eval, off the training's critical path.

faster-coco-eval runs pycocotools' algorithm in C++ (tests/maskrcnn/test_scoring.py: the same AP to
1e-4 on the same detections). `Scorer` scores an epoch's detections in a process pool on rank 0 while
the next epoch trains: the images' masks are pasted and RLE-encoded in chunks spread over the pool,
then one pool process computes the two APs. Results come back in epoch order. With no processes it
scores in the caller, at once (tests, and runs that want no extra processes).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from faster_coco_eval import COCO, COCOeval_faster

from object_detection.maskrcnn.detections import ImageDetections

Result = dict[str, Any]
IOU_TYPES = {"BBOX": "bbox", "SEGM": "segm"}


def average_precision(ground_truth: COCO, results: list[Result], iou_type: str) -> float:
    """AP@[.5:.95]; 0 for no detections (COCO's -1 means "no ground truth", also 0 here)."""
    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval_faster(ground_truth, ground_truth.loadRes(results), iou_type,
                                    print_function=lambda *_: None)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return max(float(evaluator.stats[0]), 0.0)


@cache
def ground_truth(annotations: Path) -> COCO:
    """The val annotations, read once per process."""
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(annotations))


@dataclass(frozen=True)
class EncodedChunk:
    """COCO results of a few images in columns (cheap to pickle between processes)."""

    image_ids: np.ndarray
    categories: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray  # x, y, w, h rounded to 0.01 px
    sizes: np.ndarray  # the image's height, width per detection
    counts: list[str]  # RLE

    def results(self) -> tuple[list[Result], list[Result]]:
        bbox, segm = [], []
        for k, counts in enumerate(self.counts):
            common = {"image_id": int(self.image_ids[k]), "category_id": int(self.categories[k]),
                      "score": float(self.scores[k])}
            bbox.append({**common, "bbox": self.boxes[k].tolist()})
            segm.append({**common, "segmentation": {"size": self.sizes[k].tolist(), "counts": counts}})
        return bbox, segm


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Small pastes run fastest on one thread; torch's pool of them only contends for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def encode(images: list[ImageDetections]) -> EncodedChunk:
    """Paste and RLE-encode the masks of a few images (one pool task)."""
    with _one_thread():
        counts = [c for image in images for c in image.rle_counts()]
    return EncodedChunk(
        image_ids=_column([np.full(len(i.boxes), i.image_id) for i in images], np.int64),
        categories=_column([i.categories for i in images], np.int64),
        scores=_column([i.scores for i in images], np.float64),
        boxes=_column([i.xywh() for i in images], np.float64, (0, 4)),
        sizes=_column([np.tile((i.height, i.width), (len(i.boxes), 1)) for i in images], np.int64, (0, 2)),
        counts=counts)


def _column(parts: list[np.ndarray], dtype: type, empty: tuple[int, ...] = (0,)) -> np.ndarray:
    """The images' arrays end to end (an empty one of the right shape for no images)."""
    return np.concatenate([np.zeros(empty, dtype), *parts]).astype(dtype)


def score(annotations: Path, chunks: list[EncodedChunk]) -> dict[str, float]:
    """BBOX and SEGM AP of the chunks' detections against the annotations (one pool task)."""
    bbox: list[Result] = []
    segm: list[Result] = []
    for chunk in chunks:
        b, s = chunk.results()
        bbox += b
        segm += s
    coco = ground_truth(annotations)
    return {"BBOX": average_precision(coco, bbox, "bbox"), "SEGM": average_precision(coco, segm, "segm")}


def _start_process(parent: int) -> None:
    """Pool processes leave Ctrl-C to the trainer, which shuts them down, and end when it ends without
    doing so (SIGKILL, a node failure): a watcher thread sees it go."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="maskrcnn-scorer-watch").start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _ready() -> bool:
    return True


class Scorer:
    """Scores each epoch's detections in the background; `finished()` returns (epoch, accuracy) in order."""

    def __init__(self, annotations: Path, processes: int, images_per_task: int = 16) -> None:
        self.annotations = annotations
        self.images_per_task = images_per_task
        spawn = multiprocessing.get_context("spawn")
        self._pool = (ProcessPoolExecutor(processes, mp_context=spawn, initializer=_start_process,
                                          initargs=(os.getpid(),)) if processes > 0 else None)
        self._coordinator = ThreadPoolExecutor(1, thread_name_prefix="maskrcnn-scorer") if self._pool else None
        self._pending: deque[tuple[int, Future[dict[str, float]]]] = deque()
        self.processes = processes

    def warm_up(self) -> None:
        """Start the pool's processes (each imports torch) before the clock; they read no dataset file here.
        The val annotations are read on the clock, by the first scoring task of each process."""
        if self._pool is not None:
            for future in [self._pool.submit(_ready) for _ in range(self.processes)]:
                future.result()

    def submit(self, epoch: int, images: list[ImageDetections]) -> None:
        if self._pool is None or self._coordinator is None:
            done: Future[dict[str, float]] = Future()
            done.set_result(score(self.annotations, [encode(images)]))
            self._pending.append((epoch, done))
            return
        pool = self._pool
        step = self.images_per_task
        chunks = [pool.submit(encode, images[i : i + step]) for i in range(0, len(images), step)]

        def chain() -> dict[str, float]:
            return pool.submit(score, self.annotations, [c.result() for c in chunks]).result()

        self._pending.append((epoch, self._coordinator.submit(chain)))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def finished(self, wait: bool = False) -> list[tuple[int, dict[str, float]]]:
        """The scored epochs, oldest first: those done by now, or (wait) all submitted ones."""
        done = []
        while self._pending and (wait or self._pending[0][1].done()):
            epoch, future = self._pending.popleft()
            done.append((epoch, future.result()))
        return done

    def close(self) -> None:
        """Stop without waiting for epochs still being scored (the run has ended)."""
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._coordinator is not None:
            self._coordinator.shutdown(wait=True, cancel_futures=True)

