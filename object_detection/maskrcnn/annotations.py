"""COCO instances in a few numpy arrays, so that the loader's worker processes share them.

A pycocotools `COCO` of the train split is about 2 GB of Python objects; every loader process that
reads it touches their reference counts and so ends up with its own copy of every page. These arrays
hold what training reads (image sizes and files, and the non-crowd annotations' boxes, categories and
segmentations: polygon coordinates as parsed, float64, or an RLE's JSON) and are never written after
loading, so forked workers keep sharing them. Crowd annotations, which the reference drops from the
targets, count only where it counts them: an image has a valid annotation (the reference's
`has_valid_annotation`, which keeps an image for training) when any of its annotations, crowd included,
has a box wider and taller than 1 pixel. Evaluation reads the annotation file itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class AnnotationsError(RuntimeError):
    """The file is not a COCO instances file."""


def _offsets(lengths: list[int]) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


@dataclass(frozen=True)
class CompactCoco:
    categories: np.ndarray  # COCO category ids, sorted
    image_ids: np.ndarray  # (I,), sorted
    heights: np.ndarray
    widths: np.ndarray
    file_names: np.ndarray  # fixed-width bytes
    first_annotation: np.ndarray  # (I + 1,): image i's annotations are [first[i], first[i + 1])
    has_valid_annotation: np.ndarray  # (I,) bool: a box over 1 x 1 px among all its annotations, crowd included
    boxes: np.ndarray  # (A, 4) x, y, w, h as float32
    category_ids: np.ndarray  # (A,)
    first_polygon: np.ndarray  # (A + 1,) into the polygon table; an empty range means an RLE
    first_coordinate: np.ndarray  # (P + 1,) into coordinates
    coordinates: np.ndarray  # float64, x0 y0 x1 y1 ...
    rle_start: np.ndarray  # (A + 1,) into rle_json: the RLE of annotations without polygons
    rle_json: np.ndarray  # uint8

    @classmethod
    def load(cls, path: Path) -> CompactCoco:
        if not path.is_file():
            raise AnnotationsError(f"{path}: COCO annotation file not found")
        try:
            with path.open("rb") as f:
                coco = json.load(f)
            images = sorted(coco["images"], key=lambda i: i["id"])
            categories = sorted(c["id"] for c in coco["categories"])
            annotations = coco.get("annotations", [])
        except (ValueError, KeyError, TypeError) as error:
            raise AnnotationsError(f"{path}: not a COCO instances file ({error!r})") from error
        del coco
        index = {info["id"]: k for k, info in enumerate(images)}
        per_image: list[list[dict]] = [[] for _ in images]
        valid = [False] * len(images)
        for annotation in annotations:
            image = index.get(annotation["image_id"])
            if image is None:
                continue
            width, height = annotation["bbox"][2:4]
            if width > 1 and height > 1:
                valid[image] = True
            if not annotation.get("iscrowd", 0):
                per_image[image].append(annotation)
        kept = [a for group in per_image for a in group]
        polygons = [a["segmentation"] if isinstance(a["segmentation"], list) else [] for a in kept]
        flat = [polygon for group in polygons for polygon in group]
        rles = [b"" if isinstance(a["segmentation"], list) else json.dumps(a["segmentation"]).encode()
                for a in kept]
        return cls(
            categories=np.array(categories, dtype=np.int64),
            image_ids=np.array([i["id"] for i in images], dtype=np.int64),
            heights=np.array([i["height"] for i in images], dtype=np.int32),
            widths=np.array([i["width"] for i in images], dtype=np.int32),
            file_names=np.array([i["file_name"].encode() for i in images], dtype=np.bytes_),
            first_annotation=_offsets([len(group) for group in per_image]),
            has_valid_annotation=np.array(valid, dtype=bool),
            boxes=np.array([a["bbox"] for a in kept], dtype=np.float32).reshape(-1, 4),
            category_ids=np.array([a["category_id"] for a in kept], dtype=np.int64),
            first_polygon=_offsets([len(group) for group in polygons]),
            first_coordinate=_offsets([len(polygon) for polygon in flat]),
            coordinates=np.array([v for polygon in flat for v in polygon], dtype=np.float64),
            rle_start=_offsets([len(r) for r in rles]),
            rle_json=np.frombuffer(b"".join(rles), dtype=np.uint8).copy(),
        )

    def __len__(self) -> int:
        return len(self.image_ids)

    def annotations_of(self, image: int) -> range:
        """Indices of image `image`'s (an index, not an id) non-crowd annotations."""
        return range(int(self.first_annotation[image]), int(self.first_annotation[image + 1]))

    def file_name(self, image: int) -> str:
        return self.file_names[image].decode()

    def segmentation(self, annotation: int) -> list[list[float]] | dict:
        """As COCO writes it: a list of polygons, or an RLE dict."""
        polygons = range(int(self.first_polygon[annotation]), int(self.first_polygon[annotation + 1]))
        rle = self.rle_json[self.rle_start[annotation] : self.rle_start[annotation + 1]].tobytes()
        if rle:
            return json.loads(rle)
        return [self.coordinates[self.first_coordinate[p] : self.first_coordinate[p + 1]].tolist() for p in polygons]
